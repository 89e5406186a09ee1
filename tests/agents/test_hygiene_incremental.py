"""The hygiene agent's stored identity resolution (migration 019) on the small company: the
first run resolves in full and stores it; a week's run resolves only what changed (a
planted duplicate is found, a changed record's old links go); new answers about pairs,
other settings or definitions, the schedule, enough moved records or a store that fails
its checks make the run a full one."""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from revstack.agents.crm_hygiene import CrmHygiene
from revstack.agents.engine import mark_pair, run_agents
from revstack.agents.registry import specs
from revstack.contracts import load_definitions
from revstack.data.inventory import data_as_of
from revstack.data.warehouse import Warehouse, frame, release_all, scalar
from tests.agents._contexts import agent_context
from tests.conftest import copy_of

pytestmark = pytest.mark.slow  # each case runs the agent on the small company

_CLUSTERS = "SELECT * EXCLUDE (run_id) FROM ops.identity_clusters WHERE run_id = $run ORDER BY ALL"


@pytest.fixture(scope="module")
def stored(hygiene_built: Path, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """A copy of the small company after one hygiene run (tests/conftest.py): its
    resolution is stored."""
    return copy_of(tmp_path_factory, hygiene_built)


def _copy(wh: Warehouse, tmp_path: Path) -> Warehouse:
    release_all()
    shutil.copy(wh.path, tmp_path / "copy.duckdb")
    return Warehouse(tmp_path / "copy.duckdb")


def _run(wh: Warehouse) -> tuple[str, dict[str, Any]]:
    """An engine run of the agent: its run id and its identity metadata."""
    [result] = run_agents(wh, specs(), only="crm_hygiene")
    assert result.status == "succeeded", result.message
    with wh.connect() as con:
        meta = json.loads(
            scalar(con, "SELECT metadata FROM ops.runs WHERE run_id = $r", {"r": result.run_id})
        )
    release_all()
    return result.run_id, meta["agent"]["identity"]


def _direct(
    wh: Warehouse, *, definitions: Any = None, as_of: dt.datetime | None = None, **params: Any
) -> dict[str, Any]:
    """The agent run on its own (nothing written), with other params, definitions or as-of."""
    ctx = agent_context(wh, "crm_hygiene", as_of=as_of, definitions=definitions, **params)
    return CrmHygiene().run(ctx).metadata["identity"]


def _first_run(wh: Warehouse) -> str:
    with wh.connect() as con:
        return str(scalar(con, "SELECT min(run_id) FROM ops.identity_clusters"))


def _clustered(wh: Warehouse, run: str) -> pl.DataFrame:
    with wh.connect() as con:
        return frame(con, _CLUSTERS, {"run": run})


def test_the_first_run_is_full_and_a_run_on_the_same_data_gives_it_back(
    stored: Warehouse, tmp_path: Path
) -> None:
    wh = _copy(stored, tmp_path)
    with wh.connect() as con:
        models = frame(con, "SELECT * FROM ops.identity_models ORDER BY object_type")
        records = scalar(con, "SELECT count(*) FROM ops.identity_records")
        crm = scalar(
            con, "SELECT (SELECT count(*) FROM crm.accounts) + (SELECT count(*) FROM crm.contacts)"
        )
        first = frame(con, "SELECT metadata FROM ops.runs ORDER BY started_at LIMIT 1")
        # pairs that could link (probability 0.001 or more) are stored
        kept = dict(
            con.execute(
                "SELECT object_type, count(*) FROM ops.identity_pairs GROUP BY ALL"
            ).fetchall()
        )
        low = scalar(con, "SELECT count(*) FROM ops.identity_pairs WHERE probability < 0.001")
    assert models["object_type"].to_list() == ["accounts", "contacts"]
    assert records == crm
    meta = json.loads(first["metadata"][0])["agent"]["identity"]
    assert {m["resolution"] for m in meta.values()} == {"full"} and low == 0
    assert meta["accounts"]["full_because"] == "no stored resolution"
    run, again = _run(wh)
    for kind in ("accounts", "contacts"):
        assert again[kind]["resolution"] == "incremental", again[kind]
        assert again[kind]["pairs_compared"] == 0 and again[kind]["new"] == 0
        assert again[kind]["candidate_pairs"] == kept[kind] <= meta[kind]["candidate_pairs"]
    assert _clustered(wh, run).equals(_clustered(wh, _first_run(wh)))


def test_a_duplicate_arriving_in_a_week_is_found(stored: Warehouse, tmp_path: Path) -> None:
    wh = _copy(stored, tmp_path)
    first = _first_run(wh)
    with wh.connect() as con:
        # an account that was alone, with a website: keyed in again this week
        original = scalar(
            con,
            "SELECT min(account_id) FROM crm.accounts WHERE website IS NOT NULL AND account_id "
            "NOT IN (SELECT record_id FROM ops.identity_clusters WHERE run_id = $r)",
            {"r": first},
        )
        con.execute(
            "INSERT INTO crm.accounts SELECT * REPLACE ('A9999999' AS account_id, "
            "name || ' Inc.' AS name, NULL AS phone) FROM crm.accounts WHERE account_id = $a",
            {"a": original},
        )
    run, meta = _run(wh)
    assert meta["accounts"]["resolution"] == "incremental"
    assert meta["accounts"]["new"] == 1 and meta["accounts"]["pairs_compared"] >= 1
    clusters = _clustered(wh, run)
    ids = dict(clusters.select("record_id", "cluster_id").iter_rows())
    assert ids.get("A9999999") is not None and ids["A9999999"] == ids.get(original)
    with wh.connect() as con:
        proposed = frame(
            con,
            "SELECT evidence FROM ops.proposals WHERE run_id = $r AND action_type = "
            "'merge_accounts' AND record_id = 'accounts:A9999999'",
            {"r": run},
        )
        prior = scalar(con, "SELECT prior FROM ops.identity_models WHERE object_type = 'accounts'")
    assert len(proposed) == 1
    # The card's evidence adds up on a weekly (incremental) run too: the prior and the
    # comparisons' weights (a common city's adjustment in its own) are the match weight.
    evidence = json.loads(proposed["evidence"][0])
    weights = [c["weight"] for c in evidence["comparisons"]]
    assert {"name", "city"} <= {c["field"] for c in evidence["comparisons"]}
    total = sum(weights) + math.log2(prior / (1 - prior))
    assert total == pytest.approx(evidence["match_weight"], abs=0.05)


def test_a_changed_record_loses_its_old_links(stored: Warehouse, tmp_path: Path) -> None:
    wh = _copy(stored, tmp_path)
    first = _first_run(wh)
    pairs = _clustered(wh, first).filter(
        (pl.col("object_type") == "accounts") & (pl.col("cluster_size") == 2)
    )
    moved = pairs.filter(pl.col("record_id") != pl.col("cluster_id"))["record_id"][0]
    survivor = pairs.filter(pl.col("record_id") == moved)["cluster_id"][0]
    with wh.connect() as con:
        con.execute(
            "UPDATE crm.accounts SET name = 'Zzyzx Quorble Holdings', website = "
            "'zzyzx-quorble.example', phone = '+1 555 010 9999', street = '1 Nowhere Rd', "
            "city = 'Nowhere', postal_code = '00000' WHERE account_id = $a",
            {"a": moved},
        )
    run, meta = _run(wh)
    assert meta["accounts"]["resolution"] == "incremental" and meta["accounts"]["changed"] == 1
    ids = dict(_clustered(wh, run).select("record_id", "cluster_id").iter_rows())
    assert ids.get(moved, moved) != ids.get(survivor, survivor)
    with wh.connect() as con:
        link = scalar(
            con,
            "SELECT max(probability) FROM ops.identity_pairs WHERE object_type = 'accounts' "
            "AND left_id = least($a, $b) AND right_id = greatest($a, $b)",
            {"a": moved, "b": survivor},
        )
    assert link is None or link < 0.5


def test_new_answers_about_pairs_make_the_run_estimate_again(
    stored: Warehouse, tmp_path: Path
) -> None:
    wh = _copy(stored, tmp_path)
    with wh.connect() as con:
        a, b = frame(con, "SELECT left_id, right_id FROM ops.identity_review LIMIT 1").row(0)
        kind = scalar(con, "SELECT object_type FROM ops.identity_review LIMIT 1")
    mark_pair(wh, by="rev", object_type=kind, left_id=a, right_id=b, same=False)
    _, meta = _run(wh)
    assert meta[kind]["resolution"] == "full"
    assert "answers" in meta[kind]["full_because"]
    other = "contacts" if kind == "accounts" else "accounts"
    assert meta[other]["resolution"] == "incremental"
    _, after = _run(wh)  # the answers learnt from are stored with the new estimate
    assert after[kind]["resolution"] == "incremental"


def test_other_settings_definitions_or_schedule_mean_a_full_resolution(
    stored: Warehouse,
) -> None:
    assert _direct(stored)["accounts"]["resolution"] == "incremental"
    threshold = _direct(stored, merge_threshold=0.6)["accounts"]
    assert threshold["resolution"] == "full" and "settings" in threshold["full_because"]
    changed = load_definitions(None).model_copy(update={"owner": "someone else"})
    defs = _direct(stored, definitions=changed)["contacts"]
    assert defs["resolution"] == "full" and "definitions" in defs["full_because"]
    forced = _direct(stored, full_resolution_weeks=0)["contacts"]
    assert forced["resolution"] == "full" and "every run" in forced["full_because"]
    with stored.connect() as con:
        as_of = data_as_of(con)
    release_all()
    assert as_of is not None
    late = _direct(stored, as_of=as_of + dt.timedelta(weeks=5))["accounts"]
    assert late["resolution"] == "full" and "days old" in late["full_because"]
    early = _direct(stored, as_of=as_of - dt.timedelta(days=1))["accounts"]
    assert early["resolution"] == "full" and "after this run's as-of" in early["full_because"]


def test_enough_moved_records_or_an_unreadable_store_mean_a_full_resolution(
    stored: Warehouse, tmp_path: Path
) -> None:
    wh = _copy(stored, tmp_path)
    with wh.connect() as con:
        con.execute(
            "INSERT INTO crm.contacts SELECT * REPLACE ('C9999999' AS contact_id) "
            "FROM crm.contacts ORDER BY contact_id LIMIT 1"
        )
    moved = _direct(wh, full_resolution_share=0.0001)["contacts"]
    assert (
        moved["resolution"] == "full" and "records new, changed or removed" in moved["full_because"]
    )
    assert _direct(wh)["contacts"]["resolution"] == "incremental"
    with wh.connect() as con:
        con.execute("UPDATE ops.identity_models SET prior = 2.0 WHERE object_type = 'contacts'")
    broken = _direct(wh)
    assert {m["resolution"] for m in broken.values()} == {"full"}
    assert "unreadable" in broken["contacts"]["full_because"]
