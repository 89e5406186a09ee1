"""Review at scale: the statistics by hand, and batches decided and rolled back whole."""

from __future__ import annotations

import math

import polars as pl
import pytest

from revstack.agents.engine import (
    EngineError,
    Evidence,
    batch_evidence,
    batch_status,
    decide,
    decide_batch,
    error_lower_bound,
    error_upper_bound,
    extend_sample,
    open_batches,
    rollback,
    sample_cards,
    sample_size,
    still_needed,
    stratified_share,
    verify,
    wilson,
)
from revstack.data.warehouse import Warehouse, frame
from tests.agents.conftest import insert_proposal

# -- the statistics, against hand calculations ------------------------------------------


def test_zero_failure_sample_sizes_are_the_textbook_ones() -> None:
    # ln(0.05) / ln(0.95) = 58.4 -> 59; ln(0.05) / ln(0.99) = 298.1 -> 299
    assert sample_size(10**7, 0.05) == 59
    assert sample_size(10**7, 0.01) == 299
    # 59 right of a huge batch just rules out 5%; 58 does not (1 - 0.05 ** (1/58) = 5.03%)
    assert error_upper_bound(0, 59, 10**7) < 0.05 <= error_upper_bound(0, 58, 10**7)
    # a batch smaller than the sample is reviewed whole
    assert sample_size(10, 0.05) == 10


def test_the_bound_is_the_exact_hypergeometric_one() -> None:
    # 0 wrong in 5 of 20: P(none wrong | D) = C(20-D, 5) / C(20, 5), C(20, 5) = 15504.
    # D = 8: C(12, 5) = 792 -> 0.0511 > 0.05, D = 9: C(11, 5) = 462 -> 0.0298. So 8/20.
    assert math.comb(12, 5) / math.comb(20, 5) > 0.05 > math.comb(11, 5) / math.comb(20, 5)
    assert error_upper_bound(0, 5, 20) == pytest.approx(8 / 20)
    # the whole batch reviewed leaves no doubt; nothing reviewed leaves all of it
    assert error_upper_bound(1, 10, 10) == pytest.approx(0.1)
    assert error_upper_bound(0, 0, 10) == 1.0
    # 2 wrong in 100 of a huge batch: one-sided Clopper-Pearson, Beta(0.95; 3, 98) = 6.16%
    assert error_upper_bound(2, 100, 10**7) == pytest.approx(0.0616, abs=2e-4)
    with pytest.raises(ValueError, match="wrong"):
        error_upper_bound(3, 2, 10)


def test_the_lower_bound_is_the_exact_hypergeometric_one() -> None:
    # 1 wrong in 5 of 20: P(at least one wrong | D) = 1 - C(20-D, 5) / C(20, 5):
    # D = 0 -> 0, D = 1 -> 5/20 = 0.25 > 0.05. So the batch holds at least 1 wrong: 1/20.
    assert 1 - math.comb(19, 5) / math.comb(20, 5) == pytest.approx(0.25)
    assert error_lower_bound(1, 5, 20) == pytest.approx(1 / 20)
    # 10 wrong in 59 of a huge batch: one-sided Clopper-Pearson, Beta(0.05; 10, 50) = 9.49%
    assert error_lower_bound(10, 59, 10**7) == pytest.approx(0.0949, abs=2e-4)
    # none wrong says nothing from below; the whole batch reviewed leaves no doubt
    assert error_lower_bound(0, 59, 10**7) == 0.0
    assert error_lower_bound(3, 10, 10) == pytest.approx(0.3)
    for k, n in [(1, 59), (6, 59), (30, 200)]:
        assert error_lower_bound(k, n, 10**6) <= k / n <= error_upper_bound(k, n, 10**6)


def _evidence(n: int, wrong: int, decided: int | None = None) -> Evidence:
    N, decided = 7000, n if decided is None else decided
    judged = min(decided, n)
    return Evidence(
        batch_size=N,
        sample_size=n,
        decided=decided,
        right=judged - wrong,
        wrong=wrong,
        stale=0,
        bar=0.05,
        confidence=0.95,
        error_upper_bound=error_upper_bound(wrong, judged, N),
        right_share_interval=None,
        still_needed=still_needed(wrong, judged, N, 0.05),
        error_lower_bound=error_lower_bound(wrong, judged, N),
    )


def test_a_sample_that_shows_the_batch_above_the_bar_fails_it() -> None:
    # 11% wrong, the rate of the mid company's enrichment: 59 do not settle it either way
    six = _evidence(59, 6)
    assert not six.meets_bar and not six.fails_bar
    # 173 more, every one right, would bring it under 5%: at 11% wrong they will not be
    assert six.still_needed == 173
    # twice the sample at the same rate does: the batch is worse than 5%
    more = _evidence(118, 13)
    assert more.fails_bar and more.error_lower_bound > 0.05
    assert "fails the bar" in more.sentence() and more.to_dict()["fails_bar"] is True
    # a sample not yet decided whole fails nothing
    assert not _evidence(118, 13, decided=53).fails_bar


def test_still_needed_counts_the_right_answers_that_reach_the_bar() -> None:
    n = still_needed(1, 59, 100_000, 0.05)
    assert n is not None and n > 0
    assert error_upper_bound(1, 59 + n, 100_000) < 0.05 <= error_upper_bound(1, 58 + n, 100_000)
    assert still_needed(0, 59, 100_000, 0.05) == 0
    assert still_needed(5, 10, 10, 0.05) is None  # half wrong, all reviewed: never


def test_wilson_and_the_stratified_share_by_hand() -> None:
    # 59 of 59: lower = 1 / (1 + z^2 / 59), z = 1.95996 -> 0.93887
    low, high = wilson(59, 59) or (0, 0)
    assert low == pytest.approx(1 / (1 + 1.959964**2 / 59), abs=1e-6) and high == 1.0
    # strata (N, n, right): 1000 sampled 59 with 58 right, 100 reviewed whole with 90 right.
    # weights 1000/1100 and 100/1100: 0.909091 * 0.983051 + 0.090909 * 0.9 = 0.975501.
    # Pooling raw counts would say 148/159 = 0.9308: the small stratum counted 1.7x its share.
    est, se = stratified_share([(1000, 59, 58), (100, 100, 90)]) or (0, 0)
    assert est == pytest.approx(0.975501, abs=1e-6)
    # only the sampled stratum varies (the whole one has fpc 0):
    # (1000/1100)^2 * p(1-p)/59 * (1000-59)/999, p = 58/59
    p = 58 / 59
    assert se == pytest.approx(math.sqrt((1000 / 1100) ** 2 * p * (1 - p) / 59 * 941 / 999))


# -- batches in the warehouse ----------------------------------------------------------


def _queue(wh: Warehouse, n: int, *, confidence: float = 0.8, prefix: str = "q") -> None:
    """``n`` accounts with an empty industry and a pending proposal to fill each."""
    with wh.connect() as con:
        con.execute(
            "INSERT INTO crm.accounts (account_id, name, source) "
            "SELECT $p || i, 'Company ' || i, 'test' FROM range($n) t(i)",
            {"p": prefix, "n": n},
        )
        con.execute(
            """INSERT INTO ops.proposals (proposal_id, run_id, agent, action_type, object_type,
                   record_id, field, old_value, new_value, confidence, reason, tier, tier_reason,
                   status, shadow, idempotency_key, created_at)
               SELECT 'p-' || $p || i, 'run-b', 'crm_hygiene', 'enrich_firmographics', 'accounts',
                   $p || i, 'industry', 'null', '"Software"', $c, 'provider says so', 2, 'test',
                   'pending', false, 'k-' || $p || i, now()
               FROM range($n) t(i)""",
            {"p": prefix, "n": n, "c": confidence},
        )
        con.execute(
            """INSERT INTO ops.field_leases SELECT 'accounts', record_id, 'industry', 'crm_hygiene',
                   proposal_id, now(), NULL FROM ops.proposals WHERE run_id = 'run-b'
               ON CONFLICT DO NOTHING"""
        )


def _industries(wh: Warehouse, prefix: str = "q") -> dict[str, str | None]:
    with wh.connect() as con:
        rows = frame(
            con,
            "SELECT account_id, industry FROM crm.accounts WHERE account_id LIKE $p || '%'",
            {"p": prefix},
        )
    return dict(rows.iter_rows())


def _decide_sample(wh: Warehouse, batch_id: str, *, wrong: int = 0) -> None:
    with wh.connect() as con:
        cards = sample_cards(con, batch_id)
    for i, pid in enumerate(cards["proposal_id"]):
        if i < wrong:
            decide(wh, pid, approve=False, by="rev", note="provider is out of date")
        else:
            decide(wh, pid, approve=True, by="rev")


def test_a_batch_is_decided_whole_from_its_sample_and_rolls_back_as_one(
    run_wh: Warehouse,
) -> None:
    wh = run_wh
    _queue(wh, 150)
    new = open_batches(wh, by="rev")
    assert new["size"].to_list() == [150]
    [batch_id] = new["batch_id"].to_list()
    n = int(new["sample_size"][0])
    assert n == sample_size(150) and 0 < n < 59  # a finite batch needs fewer than 59
    assert open_batches(wh, by="rev").is_empty()  # nothing left outside an open batch

    with pytest.raises(EngineError, match="decided whole"):
        decide_batch(wh, batch_id, approve=True, by="ana")  # the sample is not done
    _decide_sample(wh, batch_id)
    with pytest.raises(EngineError, match="admin"):
        decide_batch(wh, batch_id, approve=True, by="rev")

    done = decide_batch(wh, batch_id, approve=True, by="ana")
    assert done.evidence.meets_bar and done.evidence.wrong == 0
    assert sum(done.counts.values()) == 150 - n
    assert "we reviewed" in done.message and "below 5%" in done.message
    # the CRM holds every value; the chain is whole; every write names the batch
    assert set(_industries(wh).values()) == {"Software"}
    with wh.connect() as con:
        assert verify(con).ok
        statuses = frame(
            con, "SELECT status, count(*) n FROM ops.proposals WHERE run_id = 'run-b' GROUP BY 1"
        )
        writes = frame(
            con,
            "SELECT count(*) n FROM ops.audit_log WHERE action = 'apply' "
            "AND json_extract_string(detail, '$.batch') = $b",
            {"b": batch_id},
        )["n"][0]
        leases = frame(con, "SELECT count(*) n FROM ops.field_leases WHERE released_at IS NULL")[
            "n"
        ][0]
        [row] = batch_status(con, status=None).filter(pl.col("batch_id") == batch_id).to_dicts()
    assert dict(statuses.iter_rows()) == {"approved": 150}
    assert writes == 150 - n and leases == 0
    assert row["status"] == "approved" and row["waiting"] == 0 and row["meets_bar"]

    report = rollback(wh, by="ana", batch=batch_id)
    assert len(report.restored) == 150 - n and report.conflicts.is_empty()
    industries = _industries(wh)
    # the sample was decided card by card and stays; the batch's act is undone whole
    assert sum(v == "Software" for v in industries.values()) == n
    with wh.connect() as con:
        assert verify(con).ok
        rolled = frame(con, "SELECT count(*) n FROM ops.proposals WHERE status = 'rolled_back'")
    assert rolled["n"][0] == 150 - n
    with pytest.raises(EngineError, match="nothing"):
        rollback(wh, by="ana", batch=batch_id)


def test_a_failing_sample_cannot_be_approved_and_rejecting_needs_a_reason(
    run_wh: Warehouse,
) -> None:
    wh = run_wh
    _queue(wh, 300, confidence=0.93)
    [batch_id] = open_batches(wh, by="rev").filter(pl.col("band") == "0.90-0.95")["batch_id"]
    _decide_sample(wh, batch_id, wrong=3)
    with wh.connect() as con:
        ev = batch_evidence(con, batch_id)
    assert ev.wrong == 3 and not ev.meets_bar and ev.still_needed is not None
    with pytest.raises(EngineError, match="cannot be approved yet"):
        decide_batch(wh, batch_id, approve=True, by="ana")
    with pytest.raises(EngineError, match="note"):
        decide_batch(wh, batch_id, approve=False, by="ana")
    done = decide_batch(wh, batch_id, approve=False, by="ana", note="provider mislabels SaaS")
    assert done.counts == {"rejected": 300 - ev.sample_size}
    assert sum(v is None for v in _industries(wh).values()) == 300 - (ev.sample_size - 3)


def test_extending_the_sample_after_a_wrong_one_reaches_the_bar(run_wh: Warehouse) -> None:
    wh = run_wh
    _queue(wh, 2000, confidence=0.99)
    [batch_id] = open_batches(wh, by="rev").filter(pl.col("band") == "0.95-1.00")["batch_id"]
    _decide_sample(wh, batch_id, wrong=1)
    with wh.connect() as con:
        ev = batch_evidence(con, batch_id)
    assert not ev.meets_bar and ev.still_needed
    before = set(sample_cards_all(wh, batch_id))
    extend_sample(wh, batch_id, by="rev", more=ev.still_needed)
    after = set(sample_cards_all(wh, batch_id))
    assert before < after and len(after) == ev.sample_size + ev.still_needed
    _decide_sample(wh, batch_id)
    with wh.connect() as con:
        assert batch_evidence(con, batch_id).meets_bar


def sample_cards_all(wh: Warehouse, batch_id: str) -> list[str]:
    with wh.connect() as con:
        return sample_cards(con, batch_id, waiting_only=False)["proposal_id"].to_list()


def test_the_same_seed_draws_the_same_sample(tmp_path) -> None:
    from revstack.agents.engine import add_person
    from revstack.data.warehouse import release_all

    drawn = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        wh = Warehouse(tmp_path / f"{name}.duckdb")
        add_person(wh, "ana", "admin", by="ana")
        add_person(wh, "rev", "reviewer", by="ana")
        _queue(wh, 400)
        [batch_id] = open_batches(wh, by="rev", seed=seed)["batch_id"]
        drawn.append(sample_cards_all(wh, batch_id))
        release_all()
    assert drawn[0] == drawn[1] and drawn[0] != drawn[2]
    assert len(drawn[0]) == sample_size(400)


def test_batches_hold_one_kind_and_leave_decided_cards_alone(run_wh: Warehouse) -> None:
    wh = run_wh
    _queue(wh, 40, confidence=0.85, prefix="x")
    _queue(wh, 40, confidence=0.97, prefix="y")
    insert_proposal(wh, "t1", "a1", "employees", "10", "11", tier=3, status="task")
    insert_proposal(wh, "s1", "a1", "name", '"Acme"', '"Acme Inc"', status="shadow", shadow=True)
    new = open_batches(wh, by="rev")
    assert sorted(new["band"].to_list()) == ["0.80-0.90", "0.95-1.00"]
    assert new["size"].to_list() == [40, 40]
    with wh.connect() as con:
        members = frame(con, "SELECT proposal_id FROM ops.review_batch_members")["proposal_id"]
    assert "t1" not in members.to_list() and "s1" not in members.to_list()  # tasks, shadows
    high = new.filter(pl.col("band") == "0.95-1.00")["batch_id"][0]
    # a member outside the sample decided card by card keeps that decision
    with wh.connect() as con:
        cards = frame(
            con,
            "SELECT proposal_id FROM ops.review_batch_members m JOIN ops.review_batches b "
            "USING (batch_id) WHERE batch_id = $b AND draw_order > b.sample_size",
            {"b": high},
        )["proposal_id"]
    if len(cards):  # 40 of one kind may be reviewed whole at a 5% bar
        decide(wh, cards[0], approve=False, by="rev", note="wrong company")
    _decide_sample(wh, high)
    decide_batch(wh, high, approve=True, by="ana")
    with wh.connect() as con:
        statuses = dict(
            frame(
                con,
                "SELECT proposal_id, status FROM ops.proposals WHERE proposal_id LIKE 'p-y%'",
            ).iter_rows()
        )
    if len(cards):
        assert statuses[cards[0]] == "rejected"
    assert sum(s == "approved" for s in statuses.values()) == 40 - (1 if len(cards) else 0)


def test_a_record_changed_before_the_batch_decision_goes_stale(run_wh: Warehouse) -> None:
    wh = run_wh
    _queue(wh, 200, confidence=0.6)
    [batch_id] = open_batches(wh, by="rev").filter(pl.col("band") == "0.50-0.70")["batch_id"]
    with wh.connect() as con:
        rest = frame(
            con,
            "SELECT p.record_id FROM ops.review_batch_members m JOIN ops.review_batches b "
            "USING (batch_id) JOIN ops.proposals p USING (proposal_id) "
            "WHERE batch_id = $b AND draw_order > b.sample_size ORDER BY draw_order LIMIT 1",
            {"b": batch_id},
        )["record_id"][0]
        con.execute(
            "UPDATE crm.accounts SET industry = 'Retail' WHERE account_id = $r", {"r": rest}
        )
    _decide_sample(wh, batch_id)
    done = decide_batch(wh, batch_id, approve=True, by="ana")
    assert done.counts.get("stale") == 1
    assert _industries(wh)[rest] == "Retail"  # a person's value is never overwritten


def test_the_trust_ramp_counts_the_sample_not_the_rest_of_a_batch(run_wh: Warehouse) -> None:
    from revstack.metrics.trust import trust_cycles

    wh = run_wh
    _queue(wh, 150)
    [batch_id] = open_batches(wh, by="rev")["batch_id"]
    _decide_sample(wh, batch_id)
    decide_batch(wh, batch_id, approve=True, by="ana")
    with wh.connect() as con:
        n = batch_evidence(con, batch_id).sample_size
        cycles = trust_cycles(con).filter(pl.col("action_type") == "enrich_firmographics")
    # n approved in the sample; the other 150 - n were approved by one act on that
    # evidence and are not reviews of their own
    assert cycles["reviewed"].sum() == n
    assert cycles["approved_unchanged"].sum() == n
