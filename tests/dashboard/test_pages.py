"""Every page renders on an empty and a seeded warehouse; the approval flow writes the CRM."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from revstack.agents.engine import decide, run_agents
from revstack.contracts import load_all
from revstack.data.warehouse import Warehouse, release_all
from revstack.metrics.engine import action_outcomes
from tests.agents.test_runs import FillIndustry, _spec

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"
APP = str(DASHBOARD / "app.py")
# Every page file, so a page added later is tested without editing this list.
PAGES = sorted(
    f"app_pages/{p.name}" for p in (DASHBOARD / "app_pages").glob("*.py") if p.stem != "__init__"
)


def test_every_page_file_is_in_the_navigation() -> None:
    app = Path(APP).read_text()
    assert [p for p in PAGES if f'"{p}"' not in app] == []


def _app(wh: Warehouse, monkeypatch: pytest.MonkeyPatch, who: str | None = None) -> AppTest:
    monkeypatch.setenv("REVSTACK_DB", str(wh.path))
    release_all()
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    if who is not None:
        at.sidebar.selectbox(key="identity").set_value(who).run()
    return at


def agent_tiles(at: AppTest) -> list[str]:
    """The status on each agent tile of Stack health (a badge under the agent's name)."""
    found = (re.search(r"-badge\[([^\]]+)\]", md.value) for md in at.markdown)
    return [m.group(1) for m in found if m]


@pytest.fixture
def seeded(run_wh: Warehouse) -> Warehouse:
    run_agents(run_wh, [_spec("filler", FillIndustry)])
    return run_wh


def test_every_page_renders_on_an_empty_warehouse(wh: Warehouse, monkeypatch) -> None:
    at = _app(wh, monkeypatch)
    for page in PAGES:  # one session walking every page, as a person would
        at.switch_page(page).run()
        assert not at.exception, f"{page}: {at.exception[0].message}"
        assert at.title[0].value, page
        assert at.info or at.caption, f"{page}: no empty state said what to do"


def test_every_page_renders_on_a_seeded_warehouse(seeded: Warehouse, monkeypatch) -> None:
    at = _app(seeded, monkeypatch, who="rev")
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, f"{page}: {at.exception[0].message}"
        assert at.title[0].value, page


def test_stack_health_numbers_match_the_metrics(seeded: Warehouse, monkeypatch) -> None:
    from revstack.contracts import load_definitions
    from revstack.metrics.effort import weekly_hours
    from revstack.metrics.quality import audit

    [first, second, *_] = _pending(seeded, "fill_employees")
    decide(seeded, first, approve=True, by="rev")
    decide(seeded, second, approve=False, by="rev", note="no")
    report = audit(seeded, load_definitions())
    with seeded.connect() as con:
        outcomes = action_outcomes(con)
        hours = weekly_hours(con)
    at = _app(seeded, monkeypatch, who="rev")
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["Hours automated (all)"] == f"{hours['hours_automated'].sum():,.1f}"
    reviewed = outcomes["reviewed"].sum()
    assert reviewed >= 2
    overridden = (outcomes["edited"] + outcomes["rejected"]).sum()
    assert shown["Override rate"] == f"{overridden / reviewed:.0%}"
    assert shown["Data quality score"] == f"{report.score:.1f}"
    # a tile per contracted agent and per agent that ran; the test agent ran and is healthy
    tiles = agent_tiles(at)
    assert len(tiles) == len(load_all().contracts) + 1
    # the test agent ran and is healthy; the contracted agents (all implemented) have not run
    assert tiles.count("healthy") == 1 and tiles.count("not run yet") == len(load_all().contracts)


def _crm(wh: Warehouse, account: str, field: str):
    with wh.connect() as con:
        return con.execute(
            f"SELECT {field} FROM crm.accounts WHERE account_id = $a", {"a": account}
        ).fetchall()[0][0]


def _status(wh: Warehouse, pid: str) -> tuple:
    with wh.connect() as con:
        return con.execute(
            "SELECT status, decided_by, decision_note FROM ops.proposals WHERE proposal_id = $p",
            {"p": pid},
        ).fetchall()[0]


def _pending(wh: Warehouse, action: str) -> list[str]:
    with wh.connect() as con:
        return [
            r[0]
            for r in con.execute(
                "SELECT proposal_id FROM ops.proposals WHERE status = 'pending' AND action_type = $a AND run_id <> 'run-t' ORDER BY 1",
                {"a": action},
            ).fetchall()
        ]


def test_approve_edit_and_reject_from_the_page(seeded: Warehouse, monkeypatch) -> None:
    approve_id, edit_id, reject_id, *_ = _pending(seeded, "fill_employees")
    at = _app(seeded, monkeypatch, who="rev")
    at.switch_page("app_pages/approvals.py").run()
    at.button(key=f"approve_{approve_id}").click().run()
    assert _status(seeded, approve_id)[:2] == ("approved", "rev")

    at.text_input(key=f"edit_{edit_id}").set_value("77").run()
    at.button(key=f"approve_{edit_id}").click().run()
    assert _status(seeded, edit_id)[0] == "edited"

    at.text_input(key=f"note_{reject_id}").set_value("headcount is from 2019").run()
    at.button(key=f"reject_{reject_id}").click().run()
    assert _status(seeded, reject_id) == ("rejected", "rev", "headcount is from 2019")
    assert not at.exception
    with seeded.connect() as con:
        rec = con.execute(
            "SELECT record_id FROM ops.proposals WHERE proposal_id = $p", {"p": edit_id}
        ).fetchall()[0][0]
    assert _crm(seeded, rec, "employees") == 77


def test_a_viewer_cannot_decide(seeded: Warehouse, monkeypatch) -> None:
    [first, *_] = _pending(seeded, "fill_employees")
    at = _app(seeded, monkeypatch, who="vic")
    at.switch_page("app_pages/approvals.py").run()
    assert at.button(key=f"approve_{first}").disabled
    assert _status(seeded, first)[0] == "pending"


def test_data_quality_page_shows_the_stored_score(seeded: Warehouse, monkeypatch) -> None:
    from revstack.contracts import load_definitions
    from revstack.metrics.quality import audit

    report = audit(seeded, load_definitions())
    at = _app(seeded, monkeypatch, who="rev")
    at.switch_page("app_pages/data_quality.py").run()
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["Data quality score"] == f"{report.score:.1f}"
    # the per-item table's figure is a share and is shown as one, not as money
    checks = next(d for d in at.dataframe if "numerator" in d.value.columns)
    assert "share" in checks.value.columns and "value" not in checks.value.columns
    assert checks.value["share"].dropna().between(0, 1).all()


def test_approvals_counts_the_whole_queue(seeded: Warehouse, monkeypatch) -> None:
    with seeded.connect() as con:
        pending = con.execute(
            "SELECT count(*) FROM ops.proposals WHERE status = 'pending'"
        ).fetchall()[0][0]
        # more open tasks than the page fetches cards for (500): the count is all of them
        con.execute(
            "INSERT INTO ops.proposals SELECT p.* REPLACE (proposal_id || '-t' || i AS proposal_id, "
            "'task' AS status, 3 AS tier) FROM ops.proposals AS p, range(260) AS r(i) "
            "WHERE proposal_id IN (SELECT proposal_id FROM ops.proposals WHERE status = 'pending' LIMIT 3)"
        )
        tasks = con.execute("SELECT count(*) FROM ops.proposals WHERE status = 'task'").fetchall()[
            0
        ][0]
    assert tasks > 500
    at = _app(seeded, monkeypatch, who="rev")
    at.switch_page("app_pages/approvals.py").run()
    shown = {m.label: m.value for m in at.metric}
    assert shown["Waiting for a reviewer (tier 2)"] == str(pending)
    assert shown["Human tasks (tier 3)"] == f"{tasks:,}"


@pytest.mark.slow
def test_data_quality_drills_down_to_the_records(small_copy: Warehouse, monkeypatch) -> None:
    from revstack.contracts import load_definitions
    from revstack.metrics.drilldown import drill_down
    from revstack.metrics.quality import audit

    audit(small_copy, load_definitions())
    at = _app(small_copy, monkeypatch, who="ana")
    at.switch_page("app_pages/data_quality.py").run()
    at.selectbox(key="dq_kind").set_value("definition").run()
    pick = at.selectbox(key="dq_item").value
    stage = pick.split(" · ")[1]
    with small_copy.connect() as con:
        records = drill_down(con, "definition", "opportunities", stage)
    assert not at.exception
    assert len(records) > 0
    shown = [c.value for c in at.caption if "behind" in c.value]
    assert shown and shown[0].startswith(f"{records['record_id'].n_unique():,} opportunities")
    # the team filter in the sidebar narrows the records to that team's owners
    team = records["team"].drop_nulls()[0]
    at.sidebar.selectbox(key="filter_team").set_value(team).run()
    mine = records.filter(records["team"] == team)
    shown = [c.value for c in at.caption if "behind" in c.value]
    assert shown[0].startswith(f"{mine['record_id'].n_unique():,} opportunities")


def test_trust_ramp_exports_the_policy_in_force_as_a_contract_change(
    seeded: Warehouse, monkeypatch
) -> None:
    from revstack.agents.engine import active_policy, set_policy
    from revstack.metrics.trust import policy_as_contracts

    set_policy(
        seeded,
        agent="crm_hygiene",
        action_type="correct_field",
        tier=1,
        by="ana",
        reason="97 of 98 approved unchanged",
        contract_tier=2,
    )
    with seeded.connect() as con:
        [change] = policy_as_contracts(active_policy(con))
    at = _app(seeded, monkeypatch, who="ana")
    at.switch_page("app_pages/trust_ramp.py").run()
    assert not at.exception
    assert change.diff.strip() in [c.value.strip() for c in at.code]
    assert "97 of 98 approved unchanged" in change.diff


def test_agents_page_shows_the_engines_record_of_the_chosen_agent(
    seeded: Warehouse, monkeypatch
) -> None:
    [first, second, *_] = _pending(seeded, "fill_employees")
    decide(seeded, first, approve=True, by="rev")
    decide(seeded, second, approve=False, by="rev", note="no")
    with seeded.connect() as con:
        mine = action_outcomes(con).filter(pl.col("agent") == "filler")
    at = _app(seeded, monkeypatch, who="rev")
    at.switch_page("app_pages/agents.py").run()
    at.selectbox(key="agents_page_agent").set_value("filler").run()
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["Proposals"] == f"{mine['proposals'].sum():,}"
    assert shown["Applied automatically"] == f"{mine['auto_applied'].sum():,}"
    assert shown["Reviewed"] == "2" and shown["Override rate"] == "50%"
    assert shown["Latency, automatic"].endswith("s")
    assert "No measures against truth yet for filler" in at.info[0].value


def test_agents_page_draws_a_newly_registered_report(seeded: Warehouse, monkeypatch) -> None:
    from revstack.metrics import agents as agent_reports
    from tests.dashboard._report_fixture import report

    monkeypatch.setitem(agent_reports.REPORTS, "filler", "tests.dashboard._report_fixture")
    [first, second, third, *_] = _pending(seeded, "fill_employees")
    for pid, ok in ((first, True), (second, True), (third, False)):
        decide(seeded, pid, approve=ok, by="rev", note=None if ok else "no")
    from revstack.contracts import load_definitions

    with seeded.connect() as con:
        expected = report(con, load_definitions())
    at = _app(seeded, monkeypatch, who="rev")
    at.switch_page("app_pages/agents.py").run()
    at.selectbox(key="agents_page_agent").set_value("filler").run()
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["precision"] == f"{expected['precision']:.1%}"  # 2 of 3 approved
    assert shown["reviewed"] == "3" and shown["stages"] == str(len(load_definitions().stages))
    weekly = [d for d in at.dataframe if len(d.value) == len(expected["confidence_by_week"])]
    assert weekly, "the weekly measure is shown as a table"


def test_filters_set_on_one_page_hold_on_the_others(seeded: Warehouse, monkeypatch) -> None:
    from tests.agents.conftest import insert_proposal

    insert_proposal(seeded, "h1", "a2", "website", "null", '"globex.example"')  # crm_hygiene
    with seeded.connect() as con:
        pending = dict(
            con.execute(
                "SELECT agent, count(*) FROM ops.proposals WHERE status = 'pending' GROUP BY 1"
            ).fetchall()
        )
    assert pending["crm_hygiene"] == 1 and pending["filler"] > 1
    at = _app(seeded, monkeypatch, who="rev")
    at.switch_page("app_pages/agents.py").run()
    at.sidebar.multiselect(key="filter_agents").set_value(["filler"]).run()
    at.sidebar.selectbox(key="filter_window").set_value("Last 7 days").run()
    # a page without filters in between: its widgets are gone, the choice is not
    at.switch_page("app_pages/contracts.py").run()
    at.switch_page("app_pages/approvals.py").run()
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["Waiting for a reviewer (tier 2)"] == str(pending["filler"])
    assert at.sidebar.multiselect(key="filter_agents").value == ["filler"]
    at.switch_page("app_pages/data_quality.py").run()
    assert at.sidebar.selectbox(key="filter_window").value == "Last 7 days"
    at.switch_page("app_pages/stack_health.py").run()
    tiles = agent_tiles(at)
    assert len(tiles) == 1  # filler's tile only
    assert any("filler · last 7 days" in c.value for c in at.caption)
    # clearing the filter on one page clears it everywhere
    at.sidebar.multiselect(key="filter_agents").set_value([]).run()
    at.switch_page("app_pages/approvals.py").run()
    shown = {m.label: m.value for m in at.metric}
    assert shown["Waiting for a reviewer (tier 2)"] == str(sum(pending.values()))


def test_a_decision_made_elsewhere_is_on_the_next_render(seeded: Warehouse, monkeypatch) -> None:
    """The page cache is keyed on the warehouse's last change: never stale after a decision."""
    at = _app(seeded, monkeypatch, who="rev")
    at.switch_page("app_pages/agents.py").run()
    at.selectbox(key="agents_page_agent").set_value("filler").run()
    assert {m.label: m.value for m in at.metric}["Reviewed"] == "0"
    at.run()  # served from the cache now
    [first, *_] = _pending(seeded, "fill_employees")
    decide(seeded, first, approve=False, by="rev", note="as the CLI would")  # another "process"
    at.run()
    shown = {m.label: m.value for m in at.metric}
    assert (shown["Reviewed"], shown["Override rate"]) == ("1", "100%")


_HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("BEGIN TRANSACTION")
con.execute("INSERT INTO ops.runs VALUES ('R-mid', 'midway', '1', '1', 'live', 'events', "
            "'succeeded', now()::TIMESTAMP, now()::TIMESTAMP, 0, 0, 0, 0, 0, NULL, NULL)")
print("holding", flush=True)
time.sleep(2.5)  # an agent run's commit, taking its time
con.execute("COMMIT")
con.close()
"""


@pytest.mark.slow
def test_a_page_waits_out_an_agent_run_holding_the_file(seeded: Warehouse, monkeypatch) -> None:
    """Mid-update: another process holds the warehouse; the page waits, shows no lock
    error, and shows the run once it is committed (all of it, not half)."""
    import subprocess
    import sys
    import time

    at = _app(seeded, monkeypatch, who="rev")
    release_all()  # let the other process take the file
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(seeded.path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        started = time.perf_counter()
        at.run()
        waited = time.perf_counter() - started
    finally:
        holder.wait(30)
    assert not at.exception
    assert waited > 1.0  # it did wait for the commit rather than fail or read half
    assert "healthy" in agent_tiles(at) and any("midway" in md.value for md in at.markdown)


_CORRECTIONS = """
INSERT INTO ops.proposals (proposal_id, run_id, agent, action_type, object_type, record_id,
    field, old_value, new_value, confidence, reason, tier, tier_reason, status, shadow,
    idempotency_key, created_at)
SELECT 'c' || i, 'run-t', 'crm_hygiene', 'correct_field', 'accounts', 'G' || i, 'employees',
       i::VARCHAR, (i + 1)::VARCHAR, 0.5, 'provider disagrees', 2, 'test', 'pending', false,
       'c' || i, now()
FROM range(80) t(i)
"""


@pytest.mark.slow
def test_graduating_from_the_trust_ramp_is_a_logged_policy_and_a_contract_change(
    seeded: Warehouse, monkeypatch
) -> None:
    with seeded.connect() as con:
        con.execute(
            "INSERT INTO crm.accounts (account_id, name, employees, source) "
            "SELECT 'G' || i, 'g', i, 't' FROM range(80) t(i)"
        )
        con.execute(_CORRECTIONS)
    for i in range(80):  # 80 of 80: the Wilson bound clears 95% (40 of 40 would not)
        decide(seeded, f"c{i}", approve=True, by="rev")
    at = _app(seeded, monkeypatch, who="ana")
    at.switch_page("app_pages/trust_ramp.py").run()
    assert not at.exception
    assert any("crm_hygiene · correct_field**: graduate to tier 1" in m.value for m in at.markdown)
    shown = [c.value for c in at.code]
    assert shown and "+    tier: 1  # was 2: graduate to tier 1 on" in shown[0]
    at.button(key="apply_crm_hygiene_correct_field").click().run()
    assert not at.exception
    with seeded.connect() as con:
        policy = con.execute(
            "SELECT tier, changed_by, reason FROM ops.policy WHERE active "
            "AND agent = 'crm_hygiene' AND action_type = 'correct_field'"
        ).fetchall()
        logged = con.execute(
            "SELECT actor FROM ops.audit_log WHERE action = 'policy' "
            "AND record_id = 'crm_hygiene.correct_field'"
        ).fetchall()
    assert policy == [(1, "ana", policy[0][2])] and "80/80 approved unchanged" in policy[0][2]
    assert logged == [("ana",)]
    # the policy in force is on the page as the contract change, on the same run
    assert any(
        c.value.strip().startswith("--- a/contracts/agents/crm_hygiene.yaml")
        and "policy by ana" in c.value
        for c in at.code
    )


def test_the_chain_check_says_when_the_log_has_grown_and_checks_again_on_request(
    seeded: Warehouse, monkeypatch
) -> None:
    from revstack.agents.engine import verify

    at = _app(seeded, monkeypatch, who="rev")
    at.switch_page("app_pages/audit.py").run()
    with seeded.connect() as con:
        before = verify(con).rows
    assert at.success[0].value.startswith(f"Hash chain intact: {before:,} rows (checked")
    [first, *_] = _pending(seeded, "fill_employees")
    decide(seeded, first, approve=True, by="rev")
    at.run()
    assert at.success[0].value.endswith("the log has grown since)")  # not re-hashed
    at.button(key="chain_again").click().run()
    with seeded.connect() as con:
        after = verify(con).rows
    assert after > before
    assert at.success[0].value.startswith(f"Hash chain intact: {after:,} rows (checked")
    assert "grown since" not in at.success[0].value


def test_a_later_check_rehashes_only_new_rows_and_still_names_a_changed_early_row(
    seeded: Warehouse, monkeypatch
) -> None:
    """The first check of this server process re-hashes every row; a later session's
    starts from it; a row changed before that checkpoint is still named."""
    at = _app(seeded, monkeypatch, who="rev")
    at.switch_page("app_pages/audit.py").run()
    assert "every row re-hashed" in at.success[0].value
    first, second, *_ = _pending(seeded, "fill_employees")
    decide(seeded, first, approve=True, by="rev")
    later = _app(seeded, monkeypatch, who="rev")  # another session, after a decision
    later.switch_page("app_pages/audit.py").run()
    assert "on re-hashed, the earlier ones compared with their checksum" in (later.success[0].value)
    with seeded.connect() as con:  # a tamperer rebuilds the table past its triggers
        con.execute("CREATE TABLE ops.tmp AS SELECT * FROM ops.audit_log")
        con.execute("DROP TABLE ops.audit_log")
        con.execute("ALTER TABLE ops.tmp RENAME TO audit_log")
        con.execute("UPDATE ops.audit_log SET actor = 'mallory' WHERE seq = 2")
    decide(seeded, second, approve=True, by="rev")
    third = _app(seeded, monkeypatch, who="rev")
    third.switch_page("app_pages/audit.py").run()
    assert not third.success
    assert third.error[0].value.startswith("Hash chain broken at row 2: row content")


def test_a_file_restored_from_a_backup_fails_until_the_whole_chain_is_checked(
    seeded: Warehouse, monkeypatch, tmp_path
) -> None:
    import shutil

    release_all()
    shutil.copy(seeded.path, tmp_path / "backup.duckdb")
    first, *_ = _pending(seeded, "fill_employees")
    decide(seeded, first, approve=True, by="rev")
    at = _app(seeded, monkeypatch, who="rev")
    at.switch_page("app_pages/audit.py").run()  # the checkpoint: the log after the decision
    assert "every row re-hashed" in at.success[0].value
    release_all()
    shutil.copy(tmp_path / "backup.duckdb", seeded.path)  # the log as it was before it
    again = _app(seeded, monkeypatch, who="rev")
    again.switch_page("app_pages/audit.py").run()
    assert "the log was rewritten" in again.error[0].value
    again.button(key="chain_whole").click().run()
    assert "every row re-hashed" in again.success[0].value
    later = _app(seeded, monkeypatch, who="rev")
    later.switch_page("app_pages/audit.py").run()
    assert later.success and not later.error


def test_pages_hold_no_sql_and_never_import_duckdb() -> None:
    import re

    offenders = []
    for path in sorted((DASHBOARD / "app_pages").glob("*.py")):
        text = path.read_text()
        if re.search(r"^\s*(import|from)\s+duckdb", text, re.M) or re.search(
            r"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM)\b\s", text
        ):
            offenders.append(path.name)
    assert offenders == []  # pages call metrics/ and the engine (docs/design.md, Code shape)


@pytest.mark.slow
def test_a_batch_is_sampled_and_decided_whole_from_the_page(run_wh: Warehouse, monkeypatch) -> None:
    from revstack.agents.engine import batch_status, sample_cards
    from tests.agents.test_batches import _industries, _queue

    _queue(run_wh, 150)
    at = _app(run_wh, monkeypatch, who="ana")
    at.switch_page("app_pages/approvals.py").run()
    assert "150 decisions card by card" in at.caption[0].value
    at.button(key="open_batches").click().run()
    with run_wh.connect() as con:
        [batch] = batch_status(con).to_dicts()
        cards = sample_cards(con, batch["batch_id"])["proposal_id"].to_list()
    assert len(cards) == batch["sample_size"] < 150
    at.selectbox(key="review_batch").set_value(batch["batch_id"]).run()
    assert at.button(key="approve_batch").disabled  # the sample is not decided yet
    # the cards on the page are the batch's sample, in draw order
    at.button(key=f"approve_{cards[0]}").click().run()
    assert _status(run_wh, cards[0])[0] == "approved"
    for pid in cards[1:]:  # the rest of the sample, as other reviewers would decide it
        decide(run_wh, pid, approve=True, by="rev")
    at.run()
    assert at.success and r"below 5\%" in at.success[0].value  # escaped: shown as text
    at.button(key="approve_batch").click().run()
    assert not at.exception and not at.error
    assert set(_industries(run_wh).values()) == {"Software"}
    with run_wh.connect() as con:
        [done] = batch_status(con, status=None).to_dicts()
    assert done["status"] == "approved" and done["waiting"] == 0


@pytest.mark.slow
def test_the_trust_ramp_graduates_on_batch_evidence(run_wh: Warehouse, monkeypatch) -> None:
    from revstack.agents.engine import decide_batch, extend_sample, open_batches
    from tests.agents.test_batches import _decide_sample, _queue

    _queue(run_wh, 3000)  # enrich_firmographics on industry, one batch
    [batch] = open_batches(run_wh, by="rev").to_dicts()
    extend_sample(run_wh, batch["batch_id"], by="rev", more=40)  # 99 right: bound ~3%
    _decide_sample(run_wh, batch["batch_id"])
    decide_batch(run_wh, batch["batch_id"], approve=True, by="ana")
    at = _app(run_wh, monkeypatch, who="ana")
    at.switch_page("app_pages/trust_ramp.py").run()
    assert not at.exception
    titles = [h.value for h in at.subheader]
    assert "Evidence from batches" in titles
    said = [m.value for m in at.markdown]
    assert any("enrich_firmographics**: graduate to tier 1" in m for m in said)
    assert any("(from batches)" in c.value for c in at.caption)
    at.button(key="apply_crm_hygiene_enrich_firmographics").click().run()
    with run_wh.connect() as con:
        [(tier, reason)] = con.execute(
            "SELECT tier, reason FROM ops.policy WHERE active AND action_type = 'enrich_firmographics'"
        ).fetchall()
    sampled = batch["sample_size"] + 40
    assert tier == 1 and f"1 batch of 3,000 proposals, {sampled} sampled, 0 wrong" in reason


@pytest.mark.slow
def test_a_viewer_flags_a_change_and_a_reviewer_answers_it(seeded: Warehouse, monkeypatch) -> None:
    from revstack.agents.engine import feedback

    at = _app(seeded, monkeypatch, who="vic")
    at.switch_page("app_pages/audit.py").run()
    picked = at.selectbox(key="audit_flag_pick").value
    at.text_area(key="flag_change_note").set_value("wrong industry: they sell software").run()
    at.button(key="flag_change_send").click().run()
    assert not at.exception and not at.error
    with seeded.connect() as con:
        [flag] = feedback(con).to_dicts()
    assert (flag["output_kind"], flag["output_ref"], flag["flagged_by"]) == (
        "change",
        picked,
        "vic",
    )
    assert flag["agent"] == "filler" and flag["status"] == "open"

    at.sidebar.selectbox(key="identity").set_value("rev").run()
    at.switch_page("app_pages/stack_health.py").run()
    assert not at.exception
    at.button(key="health_feedback_ack").click().run()
    at.text_input(key="health_feedback_resolution").set_value("provider fixed upstream").run()
    at.button(key="health_feedback_address").click().run()
    with seeded.connect() as con:
        [flag] = feedback(con).to_dicts()
    assert (flag["status"], flag["acknowledged_by"], flag["addressed_by"]) == (
        "addressed",
        "rev",
        "rev",
    )
    at.switch_page("app_pages/agents.py").run()
    assert not at.exception


def test_tables_show_money_shares_and_counts_as_such() -> None:
    from revstack.dashboard._state import column_config

    df = pl.DataFrame(
        {
            "p50": [57797552.6075],
            "commit_bias": [0.1],
            "mape": [0.04],
            "mape_ratio": [0.62],
            "deals": [1200],
            "scale": [1.3],
            "agreement_low": [0.953],
            "segment": ["EMEA"],
        }
    )
    config = column_config(df)
    formats = {k: v["type_config"]["format"] for k, v in config.items() if "type_config" in v}
    assert formats == {
        "p50": "dollar",
        "commit_bias": "percent",
        "mape": "percent",
        "mape_ratio": "%.2f×",
        "deals": "localized",
        "scale": "%.2f",
        "agreement_low": "percent",
    }
    assert config["agreement_low"]["label"] == "agreement low"
    weeks = pl.DataFrame(
        {
            "week": [dt.datetime(2026, 6, 29), dt.datetime(2026, 7, 6)],
            "decided_at": [dt.datetime(2026, 7, 1, 9, 30), dt.datetime(2026, 7, 6)],
        }
    )
    dated = column_config(weeks)
    assert dated["week"]["type_config"]["format"] == "YYYY-MM-DD"
    assert "type_config" not in dated["decided_at"]  # a time of day is kept
    assert config["segment"]["label"] == "segment"


def test_an_override_carries_its_reason_to_the_threshold_lab(
    seeded: Warehouse, monkeypatch
) -> None:
    reject_id, edit_id, *_ = _pending(seeded, "fill_employees")
    at = _app(seeded, monkeypatch, who="rev")
    at.switch_page("app_pages/approvals.py").run()
    at.selectbox(key=f"reason_{reject_id}").set_value("stale_source").run()
    at.text_input(key=f"note_{reject_id}").set_value("headcount from 2019").run()
    at.button(key=f"reject_{reject_id}").click().run()
    at.selectbox(key=f"reason_{edit_id}").set_value("wrong_value").run()
    at.text_input(key=f"edit_{edit_id}").set_value("12").run()
    at.button(key=f"approve_{edit_id}").click().run()
    assert not at.exception
    with seeded.connect() as con:
        codes = dict(con.execute("SELECT proposal_id, code FROM ops.override_reasons").fetchall())
    assert codes == {reject_id: "stale_source", edit_id: "wrong_value"}
    at.switch_page("app_pages/threshold_lab.py").run()
    at.selectbox(key="lab_action").set_value("filler · fill_employees").run()
    assert not at.exception
    assert "What people overrode, and why" in [h.value for h in at.subheader]
    shown = at.dataframe[-1].value
    assert set(shown["reason"]) == {"stale_source", "wrong_value"}


def test_local_mode_acts_as_the_one_person_it_was_told(seeded: Warehouse, monkeypatch) -> None:
    monkeypatch.setenv("REVSTACK_AS", "rev")
    [pid, *_] = _pending(seeded, "fill_employees")
    at = _app(seeded, monkeypatch)
    at.switch_page("app_pages/approvals.py").run()
    assert not at.exception
    assert not [s for s in at.sidebar.selectbox if s.key == "identity"]  # nobody to pick
    assert any("Local mode: acting as **rev**" in c.value for c in at.sidebar.caption)
    at.button(key=f"approve_{pid}").click().run()
    assert _status(seeded, pid)[:2] == ("approved", "rev")


def test_local_mode_as_a_stranger_shows_nothing(seeded: Warehouse, monkeypatch) -> None:
    monkeypatch.setenv("REVSTACK_AS", "mallory")
    at = _app(seeded, monkeypatch)
    at.switch_page("app_pages/approvals.py").run()
    assert at.error and "mallory" in at.error[0].value
    assert not at.button  # no card, no decision


def test_the_threshold_lab_shows_the_engines_calibration_map(
    seeded: Warehouse, monkeypatch
) -> None:
    first, second, *_ = _pending(seeded, "fill_employees")
    decide(seeded, first, approve=True, by="rev")
    decide(seeded, second, approve=False, by="rev", note="wrong")
    with seeded.connect() as con:  # a fit as the engine stores it (tests/agents/test_calibration)
        con.execute(
            "INSERT INTO ops.calibrations VALUES ('R999999', 'filler', 'fill_employees', 60, 9, "
            "-1.8, 1.0, now())"
        )
    at = _app(seeded, monkeypatch, who="rev")
    at.switch_page("app_pages/threshold_lab.py").run()
    at.selectbox(key="lab_action").set_value("filler · fill_employees").run()
    assert not at.exception
    [said] = [c.value for c in at.caption if "The engine calibrates" in c.value]
    # logit(p) = -1.8 + logit(score): 0.5 -> 14%, 0.9 -> 60%
    assert "on 60 proposals" in said and "(9 approved as proposed)" in said
    assert "score of 50% now reads 14%" in said and "90% reads 60%" in said
    [reliability] = [c for c in at.get("plotly_chart") if "lab_reliability" in str(c.proto.id)]
    traces = {t.get("name") for t in json.loads(reliability.proto.spec)["data"]}
    assert {"the engine's map", "judged, by the agent's own score"} <= traces


@pytest.mark.slow
def test_clerical_review_records_an_answer_and_moves_to_the_next_pair(
    small_copy: Warehouse, monkeypatch
) -> None:
    from revstack.agents.engine import identity_labels
    from revstack.metrics.hygiene import pairs_to_review

    with small_copy.connect() as con:
        asked = pairs_to_review(con, "accounts")["pairs"]
    assert len(asked) >= 2
    first, second = asked.row(0, named=True), asked.row(1, named=True)

    at = _app(small_copy, monkeypatch, who="vic")
    at.switch_page("app_pages/data_quality.py").run()
    assert not at.exception
    assert at.button(key="cr_False").disabled  # viewers see the question only

    at.sidebar.selectbox(key="identity").set_value("rev").run()
    shown = at.dataframe[-1].value
    assert shown["record A"][0] == (first["left_name"] or "–")
    assert shown["record B"][0] == (first["right_name"] or "–")
    at.text_input(key="cr_note").set_value("two branches").run()
    at.button(key="cr_False").click().run()
    assert not at.exception
    with small_copy.connect() as con:
        marks = identity_labels(con, "accounts")
    assert marks.select("left_id", "right_id", "same", "labelled_by", "note").rows() == [
        (first["left_id"], first["right_id"], False, "rev", "two branches")
    ]
    # the next pair is on the screen now
    assert at.dataframe[-1].value["record A"][0] == (second["left_name"] or "–")


def test_a_card_shows_stored_values_as_a_person_reads_them() -> None:
    from revstack.dashboard._state import plain, value_text

    draft = '{"draft_id":"D2283","sequence":"prospecting","sequence_step":1,"subject":"Idea for **Potolu**"}'
    assert value_text(draft) == (
        "draft_id: D2283 · sequence: prospecting · sequence_step: 1 · subject: Idea for **Potolu**"
    )
    assert value_text(None) == "(blank)"
    assert value_text("null") == "(blank)"
    assert value_text('"Retail"') == "Retail"
    assert value_text("42") == "42"
    assert value_text('["a", null]') == "a, (blank)"
    assert value_text("not json") == "not json"
    # still text from outside: escaped before Markdown sees it
    assert "**" not in plain(value_text(draft)).replace("\\*", "")
