"""The hygiene agent's enrichment slice, on a generated company, measured against truth."""

from __future__ import annotations

import polars as pl
import pytest

from revstack.agents.crm_hygiene import CrmHygiene
from revstack.agents.engine import decide, run_agents
from revstack.agents.registry import specs
from revstack.data.warehouse import Warehouse, frame, release_all
from tests.conftest import copy_of


@pytest.fixture(scope="module")
def ran(hygiene_built, tmp_path_factory) -> Warehouse:
    """The small company after one hygiene run (tests/conftest.py), this module's copy."""
    return copy_of(tmp_path_factory, hygiene_built)


def _proposals(wh: Warehouse) -> pl.DataFrame:
    with wh.connect() as con:
        return frame(
            con,
            """
            SELECT p.*, t.industry AS t_industry, t.employees AS t_employees, t.annual_revenue AS t_revenue,
                   t.country AS t_country
            FROM ops.proposals p LEFT JOIN truth.entities e ON e.object_type = 'accounts' AND e.record_id = p.record_id
            LEFT JOIN truth.firmographics t ON t.account_id = e.true_entity_id
            WHERE p.agent = 'crm_hygiene'
        """,
        )


@pytest.mark.slow
def test_only_empty_fields_are_enriched_and_contradictions_wait_for_a_person(
    ran: Warehouse,
) -> None:
    p = _proposals(ran)
    assert len(p) > 100
    assert (p.filter(pl.col("action_type") == "enrich_empty_field")["old_value"] == "null").all()
    corrections = p.filter(pl.col("action_type") == "correct_field")
    assert (corrections["tier"] == 2).all() and (corrections["status"] == "pending").all()
    assert (
        corrections["evidence"].str.contains('"crm":').all()
        and corrections["evidence"].str.contains('"provider_value":').all()
    )


def test_applied_enrichment_is_right_against_truth(ran: Warehouse) -> None:
    p = _proposals(ran).filter(pl.col("action_type") == "enrich_empty_field")
    industry = p.filter(pl.col("field") == "industry")
    right = (industry["new_value"].str.strip_chars('"') == industry["t_industry"]).mean()
    assert right >= 0.8  # the provider is wrong on about 10% of covered fields
    applied = p.filter(pl.col("status") == "applied")
    assert not applied.is_empty()
    with ran.connect() as con:
        crm = dict(con.execute("SELECT account_id, country FROM crm.accounts").fetchall())
    assert all(
        crm[r["record_id"]] == r["new_value"].strip('"')
        for r in applied.filter(pl.col("field") == "country").iter_rows(named=True)
    )


def test_approving_a_correction_writes_the_provider_value(ran: Warehouse) -> None:
    p = _proposals(ran).filter(
        (pl.col("action_type") == "correct_field") & (pl.col("field") == "annual_revenue")
    )
    # a CRM value with cents: the proposal must carry it exactly or the apply turns stale
    fractional = p.filter(pl.col("old_value").cast(pl.Float64) % 1 != 0)
    assert not fractional.is_empty()
    pid, record, new = fractional.select("proposal_id", "record_id", "new_value").row(0)
    decision = decide(ran, pid, approve=True, by="ana")
    assert decision.outcome == "approved"
    with ran.connect() as con:
        value = con.execute(
            "SELECT annual_revenue FROM crm.accounts WHERE account_id = $a", {"a": record}
        ).fetchall()[0][0]
    assert value == pytest.approx(float(new))


def _truth_entity(con, kind: str) -> dict[str, str]:
    return dict(
        con.execute(
            "SELECT record_id, true_entity_id FROM truth.entities WHERE object_type = $k",
            {"k": kind},
        ).fetchall()
    )


def test_merge_proposals_are_tier_2_right_against_truth_and_readable(ran: Warehouse) -> None:
    import json

    merges = _proposals(ran).filter(pl.col("action_type").str.starts_with("merge_"))
    assert (
        len(merges) > 100 and (merges["tier"] == 2).all() and (merges["status"] == "pending").all()
    )
    # each merge is the action of its kind of record: accounts and contacts earn trust apart
    kinds = merges["record_id"].str.split(":").list.first()
    assert (merges["action_type"] == "merge_" + kinds).all()
    assert set(merges["action_type"]) == {"merge_accounts", "merge_contacts"}
    with ran.connect() as con:
        truth = {k: _truth_entity(con, k) for k in ("accounts", "contacts")}
    right = [
        truth[kind][rec] == truth[kind][json.loads(new)]
        for kind, rec, new in (
            (r.split(":")[0], r.split(":")[1], n)
            for r, n in merges.select("record_id", "new_value").iter_rows()
        )
    ]
    # measured 0.99+ on mid (docs/hygiene.md) before subsidiaries shared their group's
    # website and switchboard (issue #17); 0.96 here since (946/981, then 942/982; docs/generator.md);
    # 950/959 with the CRM's hierarchy kept apart (docs/identity.md), accounts 135/142
    assert sum(right) / len(right) >= 0.97, sum(right) / len(right)
    accounts = [r for r, k in zip(right, kinds, strict=True) if k == "accounts"]
    assert sum(accounts) / len(accounts) >= 0.92, (sum(accounts), len(accounts))
    ev = json.loads(merges["evidence"][0])
    # In seconds: which fields agreed and how strongly, and both records side by side.
    assert {c["field"] for c in ev["comparisons"]} >= {"name", "phone"}
    assert all({"level", "weight"} <= set(c) for c in ev["comparisons"])
    assert ev["records"]["duplicate"]["record_id"] == merges["record_id"][0].split(":")[1]
    assert ev["records"]["survivor"]["record_id"] == json.loads(merges["new_value"][0])
    assert "likely the same" in merges["reason"][0] and "match probability" in merges["reason"][0]


def test_approving_a_merge_maps_the_record_and_unmerge_restores_it(
    ran: Warehouse, tmp_path
) -> None:
    import shutil

    from revstack.agents.engine import rollback

    shutil.copy(ran.path, tmp_path / "copy.duckdb")
    wh = Warehouse(tmp_path / "copy.duckdb")
    merge = _proposals(wh).filter(pl.col("action_type") == "merge_accounts").row(0, named=True)
    kind, record = merge["record_id"].split(":")
    entity = merge["new_value"].strip('"')

    def mapped() -> str:
        with wh.connect() as con:
            return con.execute(
                "SELECT entity_id FROM foundation.entity_map WHERE object_type = $k AND record_id = $r",
                {"k": kind, "r": record},
            ).fetchall()[0][0]

    assert mapped() == record
    assert decide(wh, merge["proposal_id"], approve=True, by="ana").outcome == "approved"
    assert mapped() == entity
    report = rollback(wh, by="ana", proposal=merge["proposal_id"])
    assert len(report.restored) == 1 and mapped() == record
    # The undone merge is not proposed again on the same data.
    [again] = run_agents(wh, specs(), only="crm_hygiene")
    assert again.status == "succeeded"
    with wh.connect() as con:
        repeats = con.execute(
            "SELECT count(*) FROM ops.proposals WHERE record_id = $r AND action_type = 'merge_accounts'",
            {"r": merge["record_id"]},
        ).fetchall()[0][0]
    assert repeats == 1


def test_stage_missing_field_and_phantom_checks_hit_their_planted_defects(ran: Warehouse) -> None:
    from revstack.metrics.hygiene import report

    p = _proposals(ran)
    with ran.connect() as con:
        planted = {
            c: set(
                r[0]
                for r in con.execute(
                    "SELECT record_id FROM truth.defects WHERE defect_class = $c", {"c": c}
                ).fetchall()
            )
            for c in ("stage_violation", "phantom_deal")
        }
        closed = dict(
            con.execute("SELECT opportunity_id, is_closed FROM crm.opportunities").fetchall()
        )
        measured = report(con)["truth"]
    moves = p.filter(pl.col("action_type") == "move_stage")
    assert not moves.is_empty() and set(moves["record_id"]) <= planted["stage_violation"]
    assert moves["reason"].str.contains("fails the (proposal|negotiation) entry criteria").all()
    tasks = p.filter(pl.col("action_type") == "close_phantom_deal")
    assert (tasks["tier"] == 3).all() and (tasks["status"] == "task").all()
    assert not any(closed[r] for r in tasks["record_id"])  # a task: the engine closed nothing
    # A stale close date no longer marks a phantom (issue #17): some are pushed on, some
    # live deals are neglected. Recall fell from 0.99 to 0.70 on mid; here 4 of 8 since
    # time zones, silent decay and blanks changed the draws (docs/generator.md).
    assert len(set(tasks["record_id"]) & planted["phantom_deal"]) >= 0.4 * len(
        planted["phantom_deal"]
    )
    flags = p.filter(pl.col("action_type") == "flag_missing_field")
    assert (flags["field"].is_null()).all() and (flags["status"] == "applied").all()
    d = measured["defects"]
    assert (
        d["missing_required_field"]["recall"] == 1.0
        and d["missing_required_field"]["precision"] == 1.0
    )
    # precision fell from 1.00 to 0.80 on mid (neglected live deals look dead)
    assert d["stage_violation"]["recall"] == 1.0 and d["phantom_deal"]["precision"] >= 0.65
    # account merges: 0.77-0.80 precision, 0.96-0.99 recall since subsidiaries share their
    # group's website and switchboard (issue #17; it was >= 0.95, docs/generator.md)
    assert (
        measured["duplicates"]["accounts"]["precision"] >= 0.75
        and measured["duplicates"]["contacts"]["recall"] >= 0.95
    )


@pytest.mark.slow
def test_a_second_run_on_the_same_data_proposes_nothing(ran: Warehouse, tmp_path) -> None:
    import shutil

    shutil.copy(ran.path, tmp_path / "again.duckdb")
    wh = Warehouse(tmp_path / "again.duckdb")
    run_agents(wh, specs(), only="crm_hygiene")  # the first run's own writes change flags once
    [third] = run_agents(wh, specs(), only="crm_hygiene")
    assert (
        third.status == "succeeded"
        and sum(v for k, v in third.counts.items() if k != "deferred") == 0
    )


def test_a_resolver_that_cannot_learn_says_so_on_the_run_and_its_merges(tmp_path) -> None:
    # account names and nothing else: one comparison, which EM cannot learn from
    wh = Warehouse(tmp_path / "names.duckdb")
    names = [f"{w} Holdings" for w in ("Apex", "Birch", "Cobalt", "Delta", "Ember", "Fjord")]
    names += [f"{w} Logistics" for w in ("Granite", "Harbor", "Iris", "Juniper", "Kestrel")]
    names += ["Apex Holdings Inc", "Birch Holdings Ltd", "Granite Logistics LLC"]
    with wh.connect() as con:
        con.executemany(
            "INSERT INTO crm.accounts (account_id, name, source) VALUES (?, ?, 'test')",
            [(f"a{i}", n) for i, n in enumerate(names)],
        )
    [result] = run_agents(wh, specs(), only="crm_hygiene")
    assert result.status == "succeeded", result.message
    assert "identity resolution fell back to rules for accounts" in result.message
    with wh.connect() as con:
        merges = frame(
            con,
            "SELECT reason, evidence->>'$.method' AS method FROM ops.proposals "
            "WHERE action_type = 'merge_accounts'",
        )
        [meta] = frame(con, "SELECT metadata->>'$.agent.identity.accounts.method' m FROM ops.runs")[
            "m"
        ]
    assert meta == "rules"
    assert len(merges) >= 1 and set(merges["method"]) == {"rules"}
    assert merges["reason"].str.contains("the documented rule set decided").all()


class _KeepsRepeats(CrmHygiene):
    """The agent as it was before it asked which proposals are recorded: every repeat is
    returned, for the engine to drop."""

    def run(self, ctx):  # type: ignore[no-untyped-def]
        ctx.unrecorded = lambda proposals: proposals  # type: ignore[method-assign]
        return super().run(ctx)


_STORED = """
SELECT action_type, object_type, record_id, field, old_value, new_value, confidence,
       evidence, reason, tier, tier_reason, status, idempotency_key
FROM ops.proposals WHERE run_id = $run ORDER BY idempotency_key
"""


@pytest.mark.slow
def test_leaving_out_recorded_proposals_stores_what_returning_them_would(
    ran: Warehouse, tmp_path
) -> None:
    """A week on: people decided some merges, the CRM changed (a new duplicate, a blanked
    field); the run that leaves out what is recorded stores the same proposals, statuses,
    clusters and audit rows as one that returns every repeat."""
    import dataclasses
    import shutil

    with ran.connect() as con:
        merges = frame(
            con,
            "SELECT proposal_id FROM ops.proposals WHERE action_type LIKE 'merge_%' "
            "AND status = 'pending' ORDER BY proposal_id LIMIT 6",
        )["proposal_id"].to_list()
    release_all()
    runs = {}
    for name, factory in (("leaves out", CrmHygiene), ("returns all", _KeepsRepeats)):
        shutil.copy(ran.path, tmp_path / f"{name}.duckdb")
        wh = Warehouse(tmp_path / f"{name}.duckdb")
        for pid in merges[:3]:
            decide(wh, pid, approve=True, by="ana")
        for pid in merges[3:]:
            decide(wh, pid, approve=False, by="ana", note="not the same")
        with wh.connect() as con:  # the week's changes: a duplicate keyed in, a field blanked
            con.execute(
                "INSERT INTO crm.accounts SELECT * REPLACE ('A9999999' AS account_id) "
                "FROM crm.accounts ORDER BY account_id LIMIT 1"
            )
            con.execute(
                "UPDATE crm.accounts SET industry = NULL WHERE account_id = "
                "(SELECT max(account_id) FROM crm.accounts WHERE industry IS NOT NULL "
                "AND account_id <> 'A9999999')"
            )
        spec = dataclasses.replace(
            next(s for s in specs() if s.name == "crm_hygiene"), factory=factory
        )
        [result] = run_agents(wh, [spec], only="crm_hygiene")
        assert result.status == "succeeded", result.message
        with wh.connect() as con:
            runs[name] = (
                frame(con, _STORED, {"run": result.run_id}),
                frame(
                    con,
                    "SELECT * EXCLUDE (run_id) FROM ops.identity_clusters WHERE run_id = $run "
                    "ORDER BY ALL",
                    {"run": result.run_id},
                ),
                frame(
                    con,
                    "SELECT action, object_type, record_id, field, before, after FROM ops.audit_log "
                    "WHERE run_id = $run AND action <> 'read' ORDER BY ALL",
                    {"run": result.run_id},
                ),
                result.counts,
            )
        release_all()
    left, full = runs["leaves out"], runs["returns all"]
    assert len(left[0]) > 0  # the week gave the run something new to propose
    assert left[0].equals(full[0]) and left[1].equals(full[1]) and left[2].equals(full[2])
    assert left[3] == full[3]
