"""The feedback channel: anyone flags an output, the agent's people answer it."""

from __future__ import annotations

import json

import pytest

from revstack.agents.engine import (
    EngineError,
    acknowledge,
    address,
    feedback,
    flag_output,
    verify,
)
from revstack.data.warehouse import Warehouse, frame
from revstack.metrics.feedback import feedback_by_agent


def test_a_flag_moves_open_acknowledged_addressed_and_each_step_is_logged(
    engine_wh: Warehouse,
) -> None:
    wh = engine_wh
    fid = flag_output(
        wh,
        by="vic",
        agent="forecast",
        kind="forecast",
        ref="R000005:quarter:2026-10-01",
        note="P50 ignores the Acme renewal",
    )
    other = flag_output(
        wh,
        by="rev",
        agent="crm_hygiene",
        kind="change",
        ref="R000001-7",
        note="merged two subsidiaries",
    )
    with pytest.raises(EngineError, match="reviewer"):
        acknowledge(wh, fid, by="vic")  # a viewer flags; reviewers answer
    acknowledge(wh, fid, by="rev")
    with pytest.raises(EngineError, match="what changed"):
        address(wh, fid, by="rev", resolution=" ")
    address(wh, fid, by="ana", resolution="renewals now enter the new-business series")
    with pytest.raises(EngineError, match="already addressed"):
        acknowledge(wh, fid, by="rev")
    address(wh, other, by="ana", resolution="unmerged; subsidiaries keep their own records")

    with wh.connect() as con:
        [row] = feedback(con, agent="forecast").to_dicts()
        counts = {r["agent"]: r for r in feedback_by_agent(con).to_dicts()}
        logged = frame(
            con,
            "SELECT actor, action, record_id, proposal_id, detail FROM ops.audit_log "
            "WHERE action LIKE 'feedback%' ORDER BY seq",
        ).to_dicts()
        assert verify(con).ok
    assert (row["status"], row["flagged_by"], row["acknowledged_by"], row["addressed_by"]) == (
        "addressed",
        "vic",
        "rev",
        "ana",
    )
    assert row["resolution"] == "renewals now enter the new-business series"
    # addressing without a separate acknowledgement still says who answered, and when
    assert counts["crm_hygiene"]["addressed"] == 1 and counts["forecast"]["flags"] == 1
    assert [(r["actor"], r["action"]) for r in logged] == [
        ("vic", "feedback"),
        ("rev", "feedback"),
        ("rev", "feedback_ack"),
        ("ana", "feedback_addressed"),
        ("ana", "feedback_addressed"),
    ]
    assert (
        logged[0]["proposal_id"] == fid and logged[0]["record_id"] == "R000005:quarter:2026-10-01"
    )
    assert json.loads(logged[0]["detail"])["note"] == "P50 ignores the Acme renewal"


def test_bad_flags_are_refused_whole(engine_wh: Warehouse) -> None:
    with pytest.raises(EngineError, match="unknown output kind"):
        flag_output(engine_wh, by="vic", agent="forecast", kind="vibes", ref="x", note="n")
    with pytest.raises(EngineError, match="note"):
        flag_output(engine_wh, by="vic", agent="forecast", kind="forecast", ref="x", note="  ")
    with pytest.raises(EngineError, match="not a known person"):
        flag_output(engine_wh, by="nobody", agent="forecast", kind="forecast", ref="x", note="n")
    with pytest.raises(EngineError, match="no feedback"):
        acknowledge(engine_wh, "fb-999", by="rev")
    with engine_wh.connect() as con:
        assert feedback(con).is_empty()
