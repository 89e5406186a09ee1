"""Weeks of operation, replayed: the trust loop run as a RevOps team would run it.

``simulate`` generates a company, cuts it back ``weeks`` weeks (``Replay``), and then,
one week at a time, on a simulated clock (``revstack.data.clock``):

1. the week's CRM changes are loaded as an import (upserts under an import record);
2. the agents run on their schedule (a cron tick, then every agent with events);
3. the admin opens batches over the new queue; each batch's sample goes to a reviewer
   (round robin), who also decides the continuous samples of graduated actions and a
   few tier-3 tasks a week;
4. the admin approves the rest of a batch whose sample shows its error rate below the
   bar, rejects the rest of one whose sample shows it above the bar (the evidence's
   lower bound), else extends the sample once a week;
5. at the week's end the admin applies the graduation suggestions the evidence allows.

Pipeline health runs in shadow mode until ``live_week`` (the seed article's plan: week
6), when the admin makes it live.

A simulated reviewer sees what a person sees and judges it as well as their profile
says: they agree with what really happened (the generator's truth, through
``metrics.verdicts``) with probability ``accuracy``; of the wrong values they catch whose
right value is on record, they correct a share (``edits``) instead of rejecting; they
write a reason from a short list per action; each card takes them about
``minutes_per_card``. The reviewers' own agreement with truth is reported beside the
agents' precision. Every draw comes from one ``random.Random`` seeded by ``seed``.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from revstack.agents.engine import (
    add_person,
    batch_evidence,
    batch_status,
    decide,
    decide_batch,
    extend_sample,
    open_batches,
    record_schedule,
    run_agents,
    sample_cards,
    set_mode,
    set_policy,
)
from revstack.agents.registry import specs
from revstack.contracts import load_all
from revstack.data.clock import SimulatedClock, using
from revstack.data.errors import InputError
from revstack.data.generator import DEFAULT_AS_OF, Replay
from revstack.data.progress import Progress, report
from revstack.data.warehouse import Warehouse, frame, registered, scalar
from revstack.metrics.graduation import all_suggestions
from revstack.metrics.verdicts import truth_verdicts

__all__ = ["REVIEWERS", "Reviewer", "simulate"]

ADMIN = "revops"


@dataclass(frozen=True)
class Reviewer:
    """How one simulated person reviews."""

    name: str
    accuracy: float  # share of their calls that agree with what really happened
    minutes_per_card: float  # their median time on one card
    edits: float  # of the wrong values they catch and know the right one of, the share corrected
    tasks_per_week: int  # tier-3 tasks they act on each week


REVIEWERS = (
    Reviewer("maya", accuracy=0.97, minutes_per_card=1.6, edits=0.5, tasks_per_week=15),
    Reviewer("sam", accuracy=0.92, minutes_per_card=0.7, edits=0.1, tasks_per_week=25),
)

# What a reviewer writes when they turn a proposal down: (reason code, note) per action.
_REASONS: dict[str, list[tuple[str, str]]] = {
    "merge_accounts": [
        ("wrong_record", "different companies with similar names"),
        ("wrong_record", "a subsidiary, kept as its own account"),
    ],
    "merge_contacts": [
        ("wrong_record", "two people with the same name"),
        ("wrong_record", "a shared inbox, not one person"),
    ],
    "enrich_empty_field": [
        ("stale_source", "the provider's figure is out of date"),
        ("wrong_value", "does not match the company's website"),
    ],
    "correct_field": [
        ("stale_source", "the CRM value is newer than the provider's"),
        ("wrong_value", "the provider has the wrong company"),
    ],
    "move_stage": [
        ("missing_approval", "missing legal approval; stays where it is"),
        ("not_yet", "the buyer has not confirmed the next step"),
    ],
    "close_phantom_deal": [
        ("not_yet", "the customer replied last week; still active"),
        ("wrong_record", "a renewal on its own cycle, not a phantom"),
    ],
}
_OTHER = [("other", "not right for this record")]

# A week's timetable, from the moment its CRM changes arrive.
_RUN_AT = dt.timedelta(hours=1)
_REVIEW_FROM = dt.timedelta(days=1, hours=9)  # reviewer i works on day 1 + i
_BATCHES_AT = dt.timedelta(days=3, hours=14)
_GRADUATE_AT = dt.timedelta(days=4, hours=16)

_TRUE_VALUES = """
SELECT p.proposal_id,
       CASE p.field WHEN 'industry' THEN to_json(f.industry) WHEN 'country' THEN to_json(f.country)
                    WHEN 'employees' THEN to_json(f.employees)
                    WHEN 'annual_revenue' THEN to_json(f.annual_revenue) END::VARCHAR AS value
FROM ops.proposals p JOIN truth.firmographics f ON f.account_id = p.record_id
WHERE p.status = 'pending' AND p.action_type IN ('enrich_empty_field', 'correct_field')
"""
_CONTINUOUS = """
SELECT c.proposal_id FROM ops.continuous_samples c JOIN ops.proposals p USING (proposal_id)
WHERE p.status = 'pending' ORDER BY p.created_at, c.proposal_id
"""
_TASKS = (
    "SELECT proposal_id FROM ops.proposals WHERE status = 'task' ORDER BY created_at, proposal_id"
)
_WEEK = """
SELECT (SELECT count(*) FROM ops.proposals WHERE created_at >= $since AND NOT shadow) AS proposed,
       (SELECT count(*) FROM ops.proposals WHERE created_at >= $since AND NOT shadow
           AND status = 'applied') AS auto_applied,
       (SELECT count(*) FROM ops.proposals WHERE status = 'pending' AND NOT shadow) AS waiting,
       (SELECT count(*) FROM ops.events WHERE created_at >= $since) AS events
"""
_GRADUATED_PRECISION = """
SELECT p.created_at >= $at AS after, p.tier = 1 AS automatic,
       p.confidence >= coalesce($min_conf, 0) AS in_band,
       count(*) AS n, sum(v.correct::INT) AS right
FROM ops.proposals p JOIN verdicts v USING (proposal_id)
WHERE p.agent = $agent AND p.action_type = $action AND NOT p.shadow
GROUP BY ALL
"""


@dataclass
class Week:
    week: int
    at: dt.datetime
    rows_loaded: int = 0
    events: int = 0
    proposed: int = 0
    auto_applied: int = 0
    card_decisions: int = 0
    batch_acts: int = 0
    proposals_in_batch_acts: int = 0
    waiting: int = 0
    graduated: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class _Tally:
    """One reviewer's decisions: how many, how many truth could judge, how many agreed."""

    decisions: int = 0
    judged: int = 0
    agreed: int = 0
    minutes: list[float] = field(default_factory=list)


class _Team:
    """The simulated reviewers and the admin, deciding through the engine like people do."""

    def __init__(
        self,
        wh: Warehouse,
        reviewers: tuple[Reviewer, ...],
        rng: random.Random,
        clock: SimulatedClock,
    ) -> None:
        self.wh, self.reviewers, self.rng, self.clock = wh, reviewers, rng, clock
        self.tally = {r.name: _Tally() for r in reviewers}
        self.verdicts: dict[str, bool] = {}
        self.true_values: dict[str, str] = {}
        self.actions: dict[str, str] = {}

    def other(self, who: Reviewer) -> Reviewer | None:
        """The colleague who gives ``who``'s rejections a second look (none when alone)."""
        rest = [r for r in self.reviewers if r is not who]
        return rest[0] if rest else None

    def refresh(self) -> None:
        """What truth says of every proposal so far, and the true value of enrichments."""
        v = self.wh.read(truth_verdicts)
        self.verdicts = dict(v.iter_rows()) if not v.is_empty() else {}
        self.true_values = dict(self.wh.read(lambda con: frame(con, _TRUE_VALUES)).iter_rows())
        self.actions = dict(
            self.wh.read(
                lambda con: frame(
                    con,
                    "SELECT proposal_id, action_type FROM ops.proposals "
                    "WHERE status IN ('pending', 'task')",
                )
            ).iter_rows()
        )

    def _call(self, who: Reviewer, right: bool | None) -> bool:
        """What ``who`` makes of a card: True, it is right. Takes their time."""
        minutes = who.minutes_per_card * self.rng.lognormvariate(0.0, 0.5)
        self.clock.advance(dt.timedelta(minutes=minutes))
        call = True if right is None else (right if self.rng.random() < who.accuracy else not right)
        t = self.tally[who.name]
        t.decisions += 1
        t.minutes.append(minutes)
        if right is not None:
            t.judged += 1
            t.agreed += int(call == right)
        return call

    def decide_card(self, who: Reviewer, pid: str, second: Reviewer | None = None) -> bool:
        """One card: returns whether anything changed (someone may have decided first).
        With ``second``, a card ``who`` finds wrong gets a second look before it is
        turned down, and stands approved if the second reviewer finds it right: a
        sample's rejections are its evidence, and one person's slips would otherwise
        count as the agent's errors."""
        right = self.verdicts.get(pid)
        approve, by = self._call(who, right), who
        if not approve and second is not None and self._call(second, right):
            approve, by = True, second
        code, note = self.rng.choice(_REASONS.get(self.actions.get(pid, ""), _OTHER))
        true_value = self.true_values.get(pid)
        if not approve and true_value and self.rng.random() < who.edits:
            d = decide(
                self.wh,
                pid,
                approve=True,
                by=by.name,
                value=true_value,
                reason_code="wrong_value",
                note="corrected to the company's own figure",
            )
        elif approve:
            said = "second look: right as proposed" if by is not who else None
            d = decide(self.wh, pid, approve=True, by=by.name, note=said)
        else:
            d = decide(self.wh, pid, approve=False, by=by.name, note=note, reason_code=code)
        return d.changed


def _at_least(clock: SimulatedClock, at: dt.datetime) -> None:
    clock.advance_to(at)


def simulate(
    wh: Warehouse,
    *,
    weeks: int = 13,
    seed: int = 7,
    scale: str = "small",
    as_of: dt.date | None = None,
    reviewers: tuple[Reviewer, ...] = REVIEWERS,
    live_week: int = 6,
    agents: Sequence[str] | None = None,
    progress: Progress | None = None,
    on_week: Callable[[Week], None] | None = None,
) -> dict[str, Any]:
    """Replay the last ``weeks`` weeks of a generated company with a review team; returns
    a JSON-able report (weeks, reviewers, graduations and their precision, the decisions
    people made against one card at a time). ``agents`` runs only those (default: all)."""
    if weeks < 1:
        raise InputError(f"--weeks must be at least 1, got {weeks}")
    as_of = as_of or DEFAULT_AS_OF
    start = dt.datetime.combine(as_of, dt.time()) - dt.timedelta(weeks=weeks)
    wall = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if dt.datetime.combine(as_of, dt.time()) > wall:
        raise InputError(
            f"the simulation would end on {as_of}, after today: what it records must be in "
            "the past of what people do next; pass an earlier --as-of"
        )
    with wh.connect() as con:
        has = int(scalar(con, "SELECT count(*) FROM crm.accounts"))
        proposals = int(scalar(con, "SELECT count(*) FROM ops.proposals"))
    if has or proposals:
        raise InputError(
            f"{wh.path} already holds a company; simulate builds its own: use a new --db"
        )
    rng = random.Random(seed)
    clock = SimulatedClock(start - dt.timedelta(days=1))
    bundle = load_all()
    all_specs = specs(bundle)
    if agents is not None:
        unknown = set(agents) - {s.name for s in all_specs}
        if unknown:
            raise InputError(f"no agent {', '.join(sorted(unknown))}")
        all_specs = [s for s in all_specs if s.name in agents]
    done: list[Week] = []
    with using(clock):
        replay = Replay.start(wh, scale=scale, seed=seed, as_of=as_of, weeks=weeks)
        try:
            add_person(wh, ADMIN, "admin", by=ADMIN)
            for r in reviewers:
                add_person(wh, r.name, "reviewer", by=ADMIN)
            team = _Team(wh, reviewers, rng, clock)
            for w in range(weeks + 1):
                report(progress, "weeks", w, weeks + 1)
                week = _week(wh, replay, team, clock, all_specs, bundle, w, start, live_week, seed)
                done.append(week)
                if on_week is not None:
                    on_week(week)
            report(progress, "weeks", weeks + 1, weeks + 1)
            report_ = _report(wh, team, done, reviewers)
        finally:
            replay.close()
    return report_


def _week(
    wh: Warehouse,
    replay: Replay,
    team: _Team,
    clock: SimulatedClock,
    all_specs: Any,
    bundle: Any,
    w: int,
    start: dt.datetime,
    live_week: int,
    seed: int,
) -> Week:
    """Week ``w`` (0: the first look at the company as it stood at the start)."""
    at = start + dt.timedelta(weeks=w)
    week = Week(w, at)
    tick = time.perf_counter()
    _at_least(clock, at)
    if w > 0:
        week.rows_loaded = sum(replay.advance(at).values())
    week.seconds["import"] = round(time.perf_counter() - tick, 2)
    if w == live_week and any(s.name == "pipeline_health" for s in all_specs):
        set_mode(wh, agent="pipeline_health", mode="live", by=ADMIN)
        week.notes.append("pipeline_health made live")
    _at_least(clock, at + _RUN_AT)
    tick = time.perf_counter()
    record_schedule(wh)
    results = run_agents(wh, all_specs, definitions=bundle.definitions)
    week.seconds["run"] = round(time.perf_counter() - tick, 2)
    week.notes += [f"{r.agent} failed: {r.message}" for r in results if r.status == "failed"]
    tick = time.perf_counter()
    _at_least(clock, at + _RUN_AT + dt.timedelta(minutes=30))
    open_batches(wh, by=ADMIN, seed=seed * 1000 + w)
    team.refresh()
    batches = wh.read(batch_status)
    ids = batches["batch_id"].to_list() if not batches.is_empty() else []
    # The week's continuous samples and tasks, shared out once: a list read again after
    # a colleague decided part of it would shift everyone's share.
    continuous = wh.read(lambda con: frame(con, _CONTINUOUS))["proposal_id"].to_list()
    tasks = wh.read(lambda con: frame(con, _TASKS))["proposal_id"].to_list()
    first_task = 0
    for i, who in enumerate(team.reviewers):
        _at_least(clock, at + _REVIEW_FROM + dt.timedelta(days=i))
        for bid in ids[i :: len(team.reviewers)]:
            for pid in wh.read(sample_cards, bid)["proposal_id"].to_list():
                week.card_decisions += team.decide_card(who, pid, team.other(who))
        for pid in continuous[i :: len(team.reviewers)]:
            week.card_decisions += team.decide_card(who, pid, team.other(who))
        for pid in tasks[first_task : first_task + who.tasks_per_week]:
            week.card_decisions += team.decide_card(who, pid)
        first_task += who.tasks_per_week
    _at_least(clock, at + _BATCHES_AT)
    for n, bid in enumerate(ids):
        ev = wh.read(batch_evidence, bid)
        undecided = ev.decided == ev.sample_size and not (ev.meets_bar or ev.fails_bar)
        if undecided and ev.sample_size < ev.batch_size:
            # Neither shown below the bar nor above it: sample more. As many as would
            # meet the bar if all came back right, or (when none could) as many again.
            who = team.reviewers[n % len(team.reviewers)]
            extend_sample(wh, bid, by=who.name, more=ev.still_needed or ev.sample_size)
            for pid in wh.read(sample_cards, bid)["proposal_id"].to_list():
                week.card_decisions += team.decide_card(who, pid, team.other(who))
            ev = wh.read(batch_evidence, bid)
        if ev.decided < ev.sample_size:
            continue  # left open: its sample waits for next week
        if ev.meets_bar:
            d = decide_batch(wh, bid, approve=True, by=ADMIN)
        elif ev.fails_bar:
            d = decide_batch(wh, bid, approve=False, by=ADMIN, note=ev.sentence())
        else:
            continue
        week.batch_acts += 1
        week.proposals_in_batch_acts += sum(d.counts.values())
    _at_least(clock, at + _GRADUATE_AT)
    suggestions = wh.read(all_suggestions)
    if not suggestions.is_empty():
        grads = suggestions.filter(pl.col("suggestion").str.starts_with("graduate"))
        for s in grads.iter_rows(named=True):
            set_policy(
                wh,
                agent=s["agent"],
                action_type=s["action_type"],
                tier=1,
                min_confidence=s["min_confidence"],
                by=ADMIN,
                reason=s["evidence"],
            )
            week.graduated.append(f"{s['agent']}.{s['action_type']}")
    week.seconds["review"] = round(time.perf_counter() - tick, 2)
    figures = wh.read(lambda con: frame(con, _WEEK, {"since": at}).row(0, named=True))
    week.events = int(figures["events"])
    week.proposed = int(figures["proposed"])
    week.auto_applied = int(figures["auto_applied"])
    week.waiting = int(figures["waiting"])
    return week


def _report(
    wh: Warehouse, team: _Team, weeks: list[Week], reviewers: tuple[Reviewer, ...]
) -> dict[str, Any]:
    team.refresh()
    verdicts = pl.DataFrame(
        list(team.verdicts.items()),
        schema={"proposal_id": pl.String, "correct": pl.Boolean},
        orient="row",
    )
    graduations = wh.read(
        lambda con: frame(
            con,
            "SELECT logged_at, record_id, after FROM ops.audit_log "
            "WHERE action = 'policy' ORDER BY seq",
        )
    )
    grads = []
    for row in graduations.iter_rows(named=True):
        after = json.loads(row["after"] or "null")
        if not isinstance(after, dict) or after.get("tier") != 1:
            continue
        agent, _, action = str(row["record_id"]).partition(".")

        min_conf = after.get("min_confidence")

        def precision(
            con: Any,
            agent: str = agent,
            action: str = action,
            at: Any = row["logged_at"],
            min_conf: Any = min_conf,
        ) -> pl.DataFrame:
            with registered(con, "verdicts", verdicts):
                return frame(
                    con,
                    _GRADUATED_PRECISION,
                    {"agent": agent, "action": action, "at": at, "min_conf": min_conf},
                )

        rows = wh.read(precision).to_dicts()
        # "After" mixes what graduation let through on its own (tier 1, continuous samples
        # included) with what still went to a person (below the graduated threshold);
        # the fair comparison for the automatic actions is the same band under review.
        grads.append(
            {
                "action": f"{agent}.{action}",
                "graduated_at": row["logged_at"].isoformat(),
                "min_confidence": min_conf,
                "precision_under_review": _share(rows, after=False),
                "precision_under_review_in_band": _share(rows, after=False, in_band=True),
                "precision_after": _share(rows, after=True),
                "precision_after_automatic": _share(rows, after=True, automatic=True),
                "precision_after_reviewed": _share(rows, after=True, automatic=False),
            }
        )
    cards = sum(w.card_decisions for w in weeks)
    looks = sum(t.decisions for t in team.tally.values())  # second looks included
    people = looks + sum(w.batch_acts + len(w.graduated) for w in weeks)
    one_by_one = cards + sum(w.proposals_in_batch_acts for w in weeks)
    return {
        "weeks": [
            {**asdict(w), "at": w.at.isoformat(), "graduated": list(w.graduated)} for w in weeks
        ],
        "reviewers": [
            {
                **asdict(r),
                "decisions": team.tally[r.name].decisions,
                "judged": team.tally[r.name].judged,
                "agreement_with_truth": (
                    team.tally[r.name].agreed / team.tally[r.name].judged
                    if team.tally[r.name].judged
                    else None
                ),
                "median_minutes": (
                    sorted(team.tally[r.name].minutes)[len(team.tally[r.name].minutes) // 2]
                    if team.tally[r.name].minutes
                    else None
                ),
            }
            for r in reviewers
        ],
        "graduations": grads,
        "human_decisions": people,
        "decisions_one_card_at_a_time": one_by_one,
        "waiting_at_end": weeks[-1].waiting if weeks else 0,
    }


def _share(rows: list[dict[str, Any]], **where: bool) -> dict[str, Any] | None:
    """Proposals and precision over the groups of ``rows`` matching ``where``."""
    hit = [r for r in rows if all(bool(r[k]) == v for k, v in where.items())]
    n = sum(int(r["n"]) for r in hit)
    if not n:
        return None
    return {"proposals": n, "precision": round(sum(int(r["right"]) for r in hit) / n, 4)}
