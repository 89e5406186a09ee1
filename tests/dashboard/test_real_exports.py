"""Every page on an imported real export: Salesforce's sample org and Maven's CRM set,
ingested, audited, after `revstack run`. No exception anywhere, and what a page shows
is what the metrics say, or a helpful empty state where the data has nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from revstack.data.warehouse import Warehouse
from revstack.metrics.drilldown import drill_down
from revstack.metrics.health import agent_uptime
from tests.dashboard.test_pages import APP, PAGES, agent_tiles


@pytest.mark.parametrize(
    ("fmt", "folder"), [("salesforce", "salesforce_sample"), ("maven", "maven_crm")]
)
@pytest.mark.slow
def test_every_page_works_on_a_real_export(
    fmt: str, folder: str, real_export_run, tmp_path: Path, monkeypatch
) -> None:
    # imported, audited and run once per session (tests/conftest.py), with `revstack run`
    built = real_export_run(folder)
    wh = Warehouse(tmp_path / f"{fmt}.duckdb")
    shutil.copy(built, wh.path)
    ran = json.loads(built.with_suffix(".json").read_text())
    assert ran["exit"] == 0, ran["stdout"] + ran["stderr"]
    monkeypatch.setenv("REVSTACK_DB", str(wh.path))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, f"{page}: {at.exception[0].message}"
        assert at.title[0].value, page
        if page.endswith("data_quality.py"):
            shown = {m.label: m.value for m in at.metric}
            assert shown["Data quality score"] == f"{ran['audit_score']:.1f}"
            for kind in at.selectbox(key="dq_kind").options:  # every check, its worst figure
                at.selectbox(key="dq_kind").set_value(kind).run()
                assert not at.exception, f"{kind}: {at.exception[0].message}"
            at.selectbox(key="dq_kind").set_value("completeness").run()
            obj, item = at.selectbox(key="dq_item").value.split(" · ")
            with wh.connect() as con:
                n = drill_down(con, "completeness", obj, item)["record_id"].n_unique()
            assert any(c.value.startswith(f"{n:,} {obj}") for c in at.caption)
        if page.endswith("stack_health.py"):
            with wh.connect() as con:
                ran = agent_uptime(con)
            tiles = agent_tiles(at)
            assert tiles.count("healthy") == int((ran["last_status"] == "succeeded").sum()) >= 1
