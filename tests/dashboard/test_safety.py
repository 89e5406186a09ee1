"""What the dashboard hands out and shows of the data cannot act: CSV downloads hold no
live formula, and values on pages are text, never Markdown or HTML."""

from __future__ import annotations

import csv
import io
import json
import re

import polars as pl
from streamlit.testing.v1 import AppTest

from revstack.agents.engine import PROPOSAL_INPUT, Agent, AgentResult, Context, run_agents
from revstack.dashboard._state import csv_text
from revstack.data.warehouse import Warehouse, release_all
from tests.agents.test_runs import _spec
from tests.dashboard.test_pages import APP, PAGES

PAYLOAD = "=cmd|' /C calc'!A0"


def test_csv_downloads_neutralise_formula_text_and_keep_numbers() -> None:
    df = pl.DataFrame(
        {
            "reason": [PAYLOAD, "+1 206 555 0111", "plain"],
            "evidence": [["@x"], ["a"], []],  # nested: JSON text starts with [
            "amount": [-1054.5, 3.0, 0.0],
        }
    )
    header, *rows = list(csv.reader(io.StringIO(csv_text(df))))
    assert header == ["reason", "evidence", "amount"]
    assert [r[0] for r in rows] == ["'" + PAYLOAD, "'+1 206 555 0111", "plain"]
    assert rows[0][1] == '["@x"]' and rows[0][2] == "-1054.5"


LINK = "[click](http://evil.example)"
IMG = "<img src=x onerror=alert(1)>"


class Poisoned(Agent):
    """Proposes what a hostile provider sent: a link and an HTML image as values and reason."""

    name = "poison"
    version = "1.0"

    def run(self, ctx: Context) -> AgentResult:
        rows = [
            {
                "action_type": "fill_employees",
                "object_type": "accounts",
                "record_id": "a2",
                "field": "employees",
                "old_value": json.dumps(IMG),
                "new_value": json.dumps(LINK),
                "confidence": 0.6,
                "evidence": json.dumps({"source": LINK}),
                "reason": f"the provider says {LINK} {IMG}",
            }
        ]
        return AgentResult(pl.DataFrame(rows, schema=PROPOSAL_INPUT))


class Broken(Agent):
    name = "broken"
    version = "1.0"

    def run(self, ctx: Context) -> AgentResult:
        raise RuntimeError(f"the provider sent {LINK} {IMG}")


def _rendered(at: AppTest) -> list[str]:
    """Every text Streamlit renders as Markdown on the page, with where it is."""
    texts = [
        str(e.value)
        for kind in ("markdown", "caption", "info", "warning", "error", "success", "toast")
        for e in getattr(at, kind)
    ]
    return texts + [str(e.label) for e in at.expander]


def _raw_markup(text: str) -> bool:
    return "](http://evil" in text or re.search(r"(?<!\\)<img", text) is not None


def test_values_from_the_data_show_as_text_on_every_page(run_wh: Warehouse, monkeypatch) -> None:
    results = run_agents(run_wh, [_spec("poison", Poisoned), _spec("broken", Broken)])
    assert [r.status for r in results] == ["failed", "succeeded"]  # by name: broken first
    monkeypatch.setenv("REVSTACK_DB", str(run_wh.path))
    release_all()
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    at.sidebar.selectbox(key="identity").set_value("rev").run()
    seen: list[str] = []
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, f"{page}: {at.exception[0].message}"
        texts = _rendered(at)
        assert [t for t in texts if _raw_markup(t)] == [], page
        seen += texts
    shown = "\n".join(seen)
    # the card and the failed run's error are on the pages, escaped: read, not followed
    assert r"\[click\]\(http\:\/\/evil\.example\)" in shown
    assert r"\<img src\=x onerror\=alert\(1\)\>" in shown
    assert r"error: RuntimeError\: the provider sent \[click\]" in shown
