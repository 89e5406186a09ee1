"""Deal prep's weekly run builds only the briefings whose inputs changed, and stores what a
full run would (docs/deal_prep.md, Weekly runs)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from revstack.agents.deal_prep import DealPrep
from revstack.agents.engine import run_agents
from revstack.agents.registry import specs
from revstack.data.warehouse import Warehouse, frame, release_all
from revstack.metrics.deal_prep import coverage

_UPCOMING = """
SELECT activity_id, opportunity_id, contact_id, o.account_id FROM crm.activities
JOIN crm.opportunities o USING (opportunity_id)
WHERE activity_type = 'meeting' AND status = 'scheduled'
  AND occurred_at > (SELECT max(as_of) FROM ops.imports)
ORDER BY activity_id
"""
# The meeting's stored briefing: its only one, or the newest.
_LATEST = """
SELECT meeting_id, briefing_id, markdown, html, citations FROM ops.briefings
WHERE meeting_id IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY meeting_id ORDER BY generated_at DESC) = 1
"""


def _copy(src: Warehouse, dst: Path) -> Warehouse:
    release_all()
    shutil.copy(src.path, dst)
    return Warehouse(dst)


def _run(wh: Warehouse) -> dict:
    spec = next(s for s in specs() if s.name == "deal_prep")
    # every upcoming meeting (not the contract's horizon): what is kept and rebuilt is
    # checked over as many briefings as the company has
    params = {**spec.params, "horizon_days": 0}
    spec = dataclasses.replace(spec, factory=lambda: DealPrep(rewriter=None), params=params)
    [result] = run_agents(wh, [spec], only="deal_prep")
    assert result.status == "succeeded", result.message
    [meta] = _q(wh, "SELECT metadata FROM ops.runs ORDER BY started_at DESC LIMIT 1")["metadata"]
    release_all()
    return dict(json.loads(meta)["agent"])


def _q(wh: Warehouse, sql: str, params: dict | None = None) -> pl.DataFrame:
    with wh.connect() as con:
        return frame(con, sql, params)


def _without_stamps(text: str) -> str:
    """A briefing without its subtitle (the third line: data as-of and generated-at)."""
    lines = text.split("\n")
    return "\n".join(lines[:2] + lines[3:])


@pytest.mark.slow
def test_a_weekly_run_builds_only_what_changed_and_stores_what_a_full_run_would(
    small_company: Warehouse, tmp_path: Path
) -> None:
    week0 = _copy(small_company, tmp_path / "week0.duckdb")
    _run(week0)
    before = dict(_q(week0, _LATEST).select("meeting_id", "briefing_id").iter_rows())
    week1 = _copy(week0, tmp_path / "week1.duckdb")
    with week1.connect() as con:
        con.execute("UPDATE ops.imports SET as_of = as_of + INTERVAL 7 DAY")
    meetings = _q(week1, _UPCOMING)
    assert len(meetings) > 30 and set(meetings["activity_id"]) <= set(before)
    # Four planted changes, each on a deal of its own account, to values that are set (so
    # no required field turns blank or filled: the hygiene findings stay as they were).
    candidates = _q(
        week1,
        "SELECT DISTINCT o.account_id, o.opportunity_id, o.amount IS NOT NULL AS priced, "
        "a.employees IS NOT NULL AS sized, (SELECT min(r.contact_id) FROM "
        "crm.opportunity_contacts r JOIN crm.contacts c USING (contact_id) WHERE "
        "r.opportunity_id = o.opportunity_id AND c.title IS NOT NULL) AS titled "
        "FROM crm.opportunities o JOIN crm.accounts a USING (account_id) "
        "WHERE o.opportunity_id IN (SELECT unnest($deals::VARCHAR[])) ORDER BY ALL",
        {"deals": meetings["opportunity_id"].unique().to_list()},
    )
    picked: list[dict] = []
    for need in ("priced", "sized", "titled", None):
        row = candidates.filter(
            ~pl.col("account_id").is_in([p["account_id"] for p in picked])
            & (pl.col(need).is_not_null() & (pl.col(need) != False) if need else pl.lit(True))  # noqa: E712
        ).row(0, named=True)
        picked.append(row)
    deal, acc, con_deal, act_acc = picked
    contact = con_deal["titled"]
    act = _q(
        week1,
        "SELECT activity_id FROM crm.activities WHERE account_id = $a AND status = 'completed' "
        "ORDER BY occurred_at DESC, activity_id DESC LIMIT 1",
        {"a": act_acc["account_id"]},
    )["activity_id"][0]
    with week1.connect() as con:
        con.execute(
            "UPDATE crm.opportunities SET amount = amount + 1234 WHERE opportunity_id = $o",
            {"o": deal["opportunity_id"]},
        )
        con.execute(
            "UPDATE crm.accounts SET employees = employees + 1 WHERE account_id = $a",
            {"a": acc["account_id"]},
        )
        con.execute(
            "UPDATE crm.contacts SET title = 'Planted title' WHERE contact_id = $c",
            {"c": contact},
        )
        con.execute(
            "UPDATE crm.activities SET occurred_at = occurred_at - INTERVAL 1 MINUTE "
            "WHERE activity_id = $x",
            {"x": act},
        )
    full = _copy(week1, tmp_path / "full.duckdb")
    with full.connect() as con:
        con.execute("DELETE FROM ops.briefings")
    weekly = _run(week1)
    _run(full)

    # What the weekly run stores is what a full run on the same data stores.
    inc, ful = (_q(w, _LATEST) for w in (week1, full))
    upcoming = set(meetings["activity_id"])
    inc = inc.filter(pl.col("meeting_id").is_in(upcoming)).sort("meeting_id")
    ful = ful.filter(pl.col("meeting_id").is_in(upcoming)).sort("meeting_id")
    assert inc["meeting_id"].to_list() == ful["meeting_id"].to_list() == sorted(upcoming)
    assert inc["briefing_id"].to_list() == ful["briefing_id"].to_list()
    assert inc["citations"].to_list() == ful["citations"].to_list()
    for column in ("markdown", "html"):
        assert [_without_stamps(t) for t in inc[column]] == [
            _without_stamps(t) for t in ful[column]
        ]

    # It built exactly the briefings whose content changed ...
    after = dict(ful.select("meeting_id", "briefing_id").iter_rows())
    changed = {m for m in upcoming if after[m] != before[m]}
    written = set(
        _q(
            week1,
            "SELECT meeting_id FROM ops.briefings WHERE data_as_of = "
            "(SELECT max(as_of) FROM ops.imports)",
        )["meeting_id"]
    )
    assert written == changed
    # ... each planted change showed in the briefings of its deal or account ...
    of = meetings.group_by("account_id").agg("activity_id")
    on = {a: set(ms) for a, ms in of.iter_rows()}
    for a in (deal, acc, con_deal, act_acc):
        assert on[a["account_id"]] & changed, a
    # ... and nothing else was read as changed: the week passing rebuilds nothing (a
    # briefing's windows end on its meeting's day), only meetings of deals on the four
    # accounts or with the planted contact on them were looked at again.
    touched = set().union(*(on[a["account_id"]] for a in (deal, acc, con_deal, act_acc)))
    with_contact = _q(
        week1,
        "SELECT DISTINCT m.activity_id FROM crm.activities m WHERE m.activity_id IN "
        "(SELECT unnest($ms::VARCHAR[])) AND (m.contact_id = $c OR m.opportunity_id IN "
        "(SELECT opportunity_id FROM crm.opportunity_contacts WHERE contact_id = $c UNION "
        "SELECT opportunity_id FROM crm.activities WHERE contact_id = $c))",
        {"ms": sorted(upcoming), "c": contact},
    )
    touched |= set(with_contact["activity_id"])
    assert weekly["targets"] <= len(touched) < len(upcoming)
    assert weekly["inputs_unchanged"] == len(upcoming) - weekly["targets"]
    assert weekly["briefings"] == len(changed)
    # Every upcoming meeting's briefing counts as current: built from this data or kept
    # by a run on it.
    with week1.connect() as con:
        cov = coverage(con)
    assert cov["briefed_from_current_data"] == cov["upcoming_meetings"] == len(upcoming)
    assert cov["built_from_current_data"] == len(changed)
