"""Overrides as training data: reasons recorded with decisions, patterns and what they imply."""

from __future__ import annotations

import pytest

from revstack.agents.engine import EngineError, decide
from revstack.data.warehouse import Warehouse, frame
from revstack.metrics.overrides import implied_changes, override_patterns
from tests.agents.conftest import engine_wh, run_wh  # noqa: F401 - shared fixtures

_PROPOSAL = """
INSERT INTO ops.proposals (proposal_id, run_id, agent, action_type, object_type, record_id,
    field, old_value, new_value, confidence, reason, tier, tier_reason, status, shadow,
    idempotency_key, created_at)
VALUES ($id, 'run-o', 'crm_hygiene', $action, $object, $record, $field, $old, $new, $conf,
    'because', 2, 'test', 'pending', false, $id, now())
"""


def _industry_queue(wh: Warehouse, confidences: list[float]) -> list[str]:
    ids = []
    with wh.connect() as con:
        for i, c in enumerate(confidences):
            con.execute(
                "INSERT INTO crm.accounts (account_id, name, source) VALUES ($a, 'x', 't')",
                {"a": f"o{i}"},
            )
            con.execute(
                _PROPOSAL,
                {
                    "id": f"ov{i}",
                    "action": "enrich_firmographics",
                    "object": "accounts",
                    "record": f"o{i}",
                    "field": "industry",
                    "old": "null",
                    "new": '"Software"',
                    "conf": c,
                },
            )
            ids.append(f"ov{i}")
    return ids


def test_a_reason_code_goes_with_an_override_and_only_with_one(run_wh: Warehouse) -> None:  # noqa: F811
    a, b, c = _industry_queue(run_wh, [0.9, 0.9, 0.9])
    with pytest.raises(EngineError, match="not a plain approval"):
        decide(run_wh, a, approve=True, by="rev", reason_code="wrong_value")
    with pytest.raises(EngineError, match="lower-case code"):
        decide(run_wh, a, approve=False, by="rev", note="n", reason_code="Wrong Value!")
    decide(run_wh, a, approve=False, by="rev", note="they make shoes", reason_code="wrong_value")
    decide(run_wh, b, approve=True, by="rev", value='"Retail"', reason_code="stale_source")
    decide(run_wh, c, approve=True, by="rev")
    with run_wh.connect() as con:
        codes = dict(frame(con, "SELECT proposal_id, code FROM ops.override_reasons").iter_rows())
        logged = frame(
            con,
            "SELECT proposal_id, json_extract_string(detail, '$.reason_code') AS code "
            "FROM ops.audit_log WHERE actor = 'rev' AND proposal_id IN ('ov0', 'ov1', 'ov2')",
        )
    assert codes == {a: "wrong_value", b: "stale_source"}
    assert dict(logged.iter_rows()) == {a: "wrong_value", b: "stale_source", c: None}


def test_patterns_and_the_threshold_they_imply(run_wh: Warehouse) -> None:  # noqa: F811
    # 30 proposals: the 10 at 0.30-0.48 confidence are wrong (rejected, stale_source), the
    # 20 at 0.60 and above right but one (edited). On the 0.05 grid the first threshold
    # above which people overrode at most 5% is 0.50 (1 of 20 = 5%).
    confidences = [0.3 + 0.02 * i for i in range(10)] + [0.6 + 0.015 * i for i in range(20)]
    ids = _industry_queue(run_wh, confidences)
    for pid in ids[:10]:
        decide(
            run_wh,
            pid,
            approve=False,
            by="rev",
            note="old provider data",
            reason_code="stale_source",
        )
    decide(run_wh, ids[10], approve=True, by="rev", value='"Retail"', reason_code="wrong_value")
    for pid in ids[11:]:
        decide(run_wh, pid, approve=True, by="rev")
    with run_wh.connect() as con:
        patterns = override_patterns(con).to_dicts()
        [change] = implied_changes(con)
    top = patterns[0]
    assert (top["reason"], top["status"], top["overrides"], top["judged"]) == (
        "stale_source",
        "rejected",
        10,
        30,
    )
    assert top["share_of_judged"] == pytest.approx(10 / 30)
    assert top["median_confidence"] == pytest.approx(0.39)
    assert top["notes"] == ["old provider data"]
    edit = patterns[1]
    assert (edit["proposed"], edit["written"], edit["reason"]) == (
        '"Software"',
        '"Retail"',
        "wrong_value",
    )
    assert change["change"] == "min_confidence" and change["to"] == 0.5
    assert change["why"].startswith("10 of 11 overrides had confidence below 0.50")


def test_a_stage_moved_back_again_and_again_points_at_its_criteria(run_wh: Warehouse) -> None:  # noqa: F811
    with run_wh.connect() as con:
        for i in range(20):
            con.execute(
                "INSERT INTO crm.opportunities (opportunity_id, name, stage, is_closed, is_won, "
                "source) VALUES ($o, 'deal', 'proposal', false, false, 't')",
                {"o": f"d{i}"},
            )
            con.execute(
                _PROPOSAL,
                {
                    "id": f"st{i}",
                    "action": "move_stage",
                    "object": "opportunities",
                    "record": f"d{i}",
                    "field": "stage",
                    "old": '"proposal"',
                    "new": '"negotiation"',
                    "conf": 0.9,
                },
            )
    for i in range(20):
        if i < 4:
            decide(
                run_wh,
                f"st{i}",
                approve=True,
                by="rev",
                value='"proposal"',
                note="legal has not signed off",
                reason_code="missing_approval",
            )
        else:
            decide(run_wh, f"st{i}", approve=True, by="rev")
    with run_wh.connect() as con:
        changes = implied_changes(con)
    [stage] = [c for c in changes if c["change"] == "stage criteria"]
    assert stage["to"] == '"negotiation"'
    assert "set 4 deals proposed for" in stage["why"] and "(missing_approval)" in stage["why"]
