"""The weekly review table: precision against truth where it can judge, else people."""

from __future__ import annotations

from pathlib import Path

import pytest

from revstack.agents.engine import decide
from revstack.data.warehouse import Warehouse, frame
from revstack.metrics.hygiene import defects_found
from revstack.metrics.verdicts import truth_verdicts
from revstack.metrics.weekly_review import agent_quality
from tests.agents.conftest import engine_wh, run_wh  # noqa: F401 - shared fixtures


@pytest.mark.slow
def test_hygiene_is_judged_by_truth_with_its_recall(small_run: Path) -> None:
    with Warehouse(small_run).connect() as con:
        rows = {r["agent"]: r for r in agent_quality(con).to_dicts()}
        hygiene = frame(con, "SELECT proposal_id FROM ops.proposals WHERE agent = 'crm_hygiene'")
        verdicts = truth_verdicts(con).join(hygiene, on="proposal_id")
        found = defects_found(con)
    h = rows["crm_hygiene"]
    assert h["precision_from"] == "truth" and h["judged"] == len(verdicts)
    assert h["precision"] == pytest.approx(verdicts["correct"].mean())
    assert h["precision_low"] < h["precision"] < h["precision_high"]
    caught = sum(r["found"] for r in found.values())
    assert h["recall"] == pytest.approx(caught / sum(r["injected"] for r in found.values()))
    assert len(h["weekly_precision"]) == 8 and h["weekly_precision"][-1] is not None
    # an agent nobody judged and truth cannot judge has no precision, not a made-up one
    assert rows["deal_prep"]["precision"] is None


def test_without_truth_precision_comes_from_people(run_wh: Warehouse) -> None:  # noqa: F811
    from tests.agents.test_batches import _queue

    _queue(run_wh, 10)
    for i in range(10):
        if i < 2:
            decide(run_wh, f"p-q{i}", approve=False, by="rev", note="wrong")
        else:
            decide(run_wh, f"p-q{i}", approve=True, by="rev")
    with run_wh.connect() as con:
        [row] = agent_quality(con).to_dicts()
    assert (row["agent"], row["precision_from"], row["judged"]) == ("crm_hygiene", "people", 10)
    assert row["precision"] == pytest.approx(0.8) and row["recall"] is None
