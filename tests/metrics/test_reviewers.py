"""Reviewers measured against truth: agreement, and a rubber stamp is named."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from revstack.agents.engine import add_person, decide
from revstack.data.warehouse import Warehouse, frame, release_all
from revstack.metrics.reviewers import reviewer_accuracy
from revstack.metrics.verdicts import truth_verdicts


@pytest.mark.slow
def test_a_reviewer_who_approves_everything_is_named(small_run: Path, tmp_path: Path) -> None:
    path = tmp_path / "small.duckdb"
    shutil.copy(small_run, path)
    wh = Warehouse(path)
    add_person(wh, "stamp", "reviewer", by="ana")
    with wh.connect() as con:
        pending = frame(con, "SELECT proposal_id FROM ops.proposals WHERE status = 'pending'")
        verdicts = dict(truth_verdicts(con).iter_rows())
    judged = [p for p in pending["proposal_id"] if p in verdicts]
    right = [p for p in judged if verdicts[p]]
    wrong_ones = [p for p in judged if not verdicts[p]]
    careful = right[:30] + wrong_ones[:30]
    stamped = right[30:90] + wrong_ones[30:90]  # half of them wrong
    for pid in careful:  # rev follows truth exactly
        if verdicts[pid]:
            decide(wh, pid, approve=True, by="rev")
        else:
            decide(wh, pid, approve=False, by="rev", note="wrong")
    for pid in stamped:
        decide(wh, pid, approve=True, by="stamp")
    with wh.connect() as con:
        rows = {r["reviewer"]: r for r in reviewer_accuracy(con).to_dicts()}
    release_all()
    assert rows["rev"]["agreement"] == 1.0 and rows["rev"]["wrong_let_through"] == 0
    assert not rows["rev"]["rubber_stamp"]
    wrong = sum(not verdicts[p] for p in stamped)
    assert rows["stamp"]["approval_rate"] == 1.0
    assert rows["stamp"]["wrong_let_through"] == wrong
    assert rows["stamp"]["agreement"] == pytest.approx(1 - wrong / len(stamped))
    assert wrong == 60 and rows["stamp"]["rubber_stamp"]
    assert pl.Series([r["decisions"] for r in rows.values()]).sum() == 180
