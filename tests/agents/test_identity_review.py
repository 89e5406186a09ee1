"""Clerical review of identity pairs: the hygiene run asks, people answer, the next run
learns (docs/identity.md, Labels)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from revstack.agents.engine import (
    EngineError,
    identity_labels,
    mark_pair,
    run_agents,
    verify,
)
from revstack.agents.registry import specs
from revstack.data.identity import review_pairs
from revstack.data.identity._labels import STRENGTH, apply_shifts, learn_shifts
from revstack.data.warehouse import Warehouse, frame, release_all
from tests.conftest import copy_of


def test_an_answer_moves_its_kind_of_pair_and_no_other() -> None:
    scored = pl.DataFrame(
        {
            "left_id": ["1", "2", "3", "4"],
            "right_id": ["9", "8", "7", "6"],
            "g_name": [3, 3, 1, 2],
            "g_city": [1, 1, 1, 1],
            "probability": [0.45, 0.55, 0.2, 0.9],
        }
    )
    marked = scored.head(1).with_columns(same=pl.lit(True))
    shifts = learn_shifts(scored, marked, ["g_name", "g_city"])
    [row] = shifts.to_dicts()
    # the kind's prior is its pairs' mean probability, worth STRENGTH answers
    assert row["prior"] == pytest.approx(0.5)
    assert row["posterior"] == pytest.approx((STRENGTH * 0.5 + 1) / (STRENGTH + 1))
    moved = apply_shifts(scored, shifts, ["g_name", "g_city"])
    p = moved["probability"].to_list()
    assert p[0] > 0.45 and p[1] > 0.55 and p[0] < p[1]  # both move, in order
    assert p[2:] == pytest.approx([0.2, 0.9])  # kinds nobody answered about stay
    # the same kind marked different moves it the other way
    down = apply_shifts(
        scored,
        learn_shifts(scored, marked.with_columns(same=pl.lit(False)), ["g_name", "g_city"]),
        ["g_name", "g_city"],
    )
    assert down["probability"][0] < 0.45


def test_the_pairs_asked_about_are_one_per_kind_nearest_an_even_chance() -> None:
    pairs = pl.DataFrame(
        {
            "left_id": ["1", "2", "3", "4", "5"],
            "right_id": ["9", "8", "7", "6", "0"],
            "g_name": [3, 3, 1, 2, 2],
            "probability": [0.49, 0.51, 0.05, 0.7, 0.6],
        }
    )
    ask = review_pairs(pairs, ["g_name"], n=10)
    assert ask["left_id"].to_list() == ["1", "5", "3"]
    answered = pl.DataFrame({"left_id": ["9"], "right_id": ["1"]})  # either order
    assert review_pairs(pairs, ["g_name"], n=1, answered=answered)["left_id"].to_list() == ["2"]


@pytest.fixture(scope="module")
def company(hygiene_built, tmp_path_factory) -> Warehouse:
    """The small company after one hygiene run (tests/conftest.py), this module's copy."""
    return copy_of(tmp_path_factory, hygiene_built)


def _review(wh: Warehouse) -> pl.DataFrame:
    with wh.connect() as con:
        return frame(con, "SELECT * FROM ops.identity_review ORDER BY object_type, rank")


def _together(wh: Warehouse, kind: str, a: str, b: str) -> bool:
    with wh.connect() as con:
        run = con.execute(
            "SELECT max(run_id) FROM ops.identity_clusters WHERE object_type = $k", {"k": kind}
        ).fetchone()[0]
        clusters = dict(
            con.execute(
                "SELECT record_id, cluster_id FROM ops.identity_clusters "
                "WHERE run_id = $r AND object_type = $k AND record_id IN ($a, $b)",
                {"r": run, "k": kind, "a": a, "b": b},
            ).fetchall()
        )
    # a record alone in its cluster is not stored: it is its own
    return clusters.get(a, a) == clusters.get(b, b)


@pytest.mark.slow
def test_a_run_asks_about_its_hardest_pairs_and_the_next_run_decides_them_as_answered(
    company: Warehouse,
) -> None:
    wh = company
    asked = _review(wh)
    for kind in ("accounts", "contacts"):
        part = asked.filter(pl.col("object_type") == kind)
        assert 1 <= len(part) <= 20
        assert part["rank"].to_list() == list(range(1, len(part) + 1))
        margin = (part["probability"] - 0.5).abs().to_numpy()
        assert np.all(np.diff(margin) >= -1e-9)  # hardest first
        kinds = [tuple((c["kind"], c["level"]) for c in json.loads(x)) for x in part["levels"]]
        assert len(set(kinds)) == len(kinds)  # one pair of each kind

    # Answer the two hardest account pairs against what the matcher did with them.
    top = asked.filter(pl.col("object_type") == "accounts").head(2)
    answers = []
    for a, b in top.select("left_id", "right_id").iter_rows():
        same = not _together(wh, "accounts", a, b)
        mark_pair(wh, by="rev", object_type="accounts", left_id=b, right_id=a, same=same)
        answers.append((a, b, same))
    run_agents(wh, specs(), only="crm_hygiene")
    release_all()
    for a, b, same in answers:
        assert _together(wh, "accounts", a, b) is same
    again = _review(wh).filter(pl.col("object_type") == "accounts")
    asked_again = set(again.select("left_id", "right_id").iter_rows())
    assert not asked_again & {(a, b) for a, b, _ in answers}


@pytest.mark.slow
def test_marks_are_a_reviewers_logged_and_the_latest_counts(company: Warehouse) -> None:
    wh = company
    with wh.connect() as con:
        a, b = [
            r[0]
            for r in con.execute(
                "SELECT account_id FROM crm.accounts ORDER BY 1 LIMIT 2"
            ).fetchall()
        ]
        before = con.execute("SELECT count(*) FROM ops.identity_labels").fetchone()[0]
    with pytest.raises(EngineError, match="reviewer"):
        mark_pair(wh, by="vic", object_type="accounts", left_id=a, right_id=b, same=True)
    with pytest.raises(EngineError, match="no account"):
        mark_pair(wh, by="rev", object_type="accounts", left_id=a, right_id="nobody", same=True)
    with pytest.raises(EngineError, match="twice"):
        mark_pair(wh, by="rev", object_type="accounts", left_id=a, right_id=a, same=True)
    with pytest.raises(EngineError, match="unknown object type"):
        mark_pair(wh, by="rev", object_type="deals", left_id=a, right_id=b, same=True)
    with wh.connect() as con:
        assert con.execute("SELECT count(*) FROM ops.identity_labels").fetchone()[0] == before

    mark_pair(
        wh, by="rev", object_type="accounts", left_id=b, right_id=a, same=False, note="two sites"
    )
    mark_pair(wh, by="ana", object_type="accounts", left_id=a, right_id=b, same=True)
    with wh.connect() as con:
        latest = identity_labels(con, "accounts").filter(
            (pl.col("left_id") == min(a, b)) & (pl.col("right_id") == max(a, b))
        )
        logged = frame(
            con,
            "SELECT actor, record_id, detail FROM ops.audit_log WHERE action = 'identity_mark' "
            "AND record_id = $a ORDER BY seq",
            {"a": min(a, b)},
        )
        assert verify(con).ok
    assert latest.select("same", "labelled_by").row(0) == (True, "ana")
    assert logged["actor"].to_list() == ["rev", "ana"]
    assert [json.loads(d)["same"] for d in logged["detail"]] == [False, True]


def test_pairs_of_kinds_nobody_answered_about_keep_their_weight_exactly() -> None:
    scored = pl.DataFrame(
        {
            "left_id": ["1", "2"],
            "right_id": ["9", "8"],
            "g_name": [3, 1],
            "match_weight": [45.0, -2.0],
            "probability": [1.0, 0.2],
        }
    )
    shifts = learn_shifts(scored, scored.tail(1).with_columns(same=pl.lit(True)), ["g_name"])
    moved = apply_shifts(scored, shifts, ["g_name"])
    assert moved.row(0) == scored.row(0)  # untouched, its weight not rebuilt from p = 1.0
    assert moved["match_weight"][1] > -2.0 and moved["probability"][1] > 0.2
