"""Runs: pending events -> agents in dependency order -> proposals routed and recorded.

Each agent's run is all or nothing. The agent reads through its context (short
connections) and computes with the warehouse closed; then one retried transaction
routes its proposals, applies tier 1, queues tier 2 with leases, opens tier-3
tasks, consumes its events and writes the run row and every audit row. A process
killed at any point leaves either the whole run or none of it; rerunning picks up
the unconsumed events.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb
import polars as pl

from revstack.agents.engine._agent import Agent, AgentResult
from revstack.agents.engine._apply import apply_batch
from revstack.agents.engine._audit import append, to_json
from revstack.agents.engine._calibrate import calibrate, fit_calibrations
from revstack.agents.engine._context import Context, SharedReads
from revstack.agents.engine._events import detect_changes
from revstack.agents.engine._expiry import expire_tasks
from revstack.agents.engine._identity import seed_identity
from revstack.agents.engine._proposals import AgentOutputError, validate_proposals
from revstack.agents.engine._route import CONTINUOUS_SHARE, route
from revstack.agents.engine._units import in_transaction, is_conflict, now_utc
from revstack.data.inventory import data_as_of
from revstack.data.memory import give_back
from revstack.data.progress import Progress, report
from revstack.data.warehouse import Warehouse, frame, registered, scalar, scratch

__all__ = ["AgentSpec", "RunResult", "run_agents", "dependency_order"]


@dataclass(frozen=True)
class AgentSpec:
    """Everything the engine needs to run one agent under its contract."""

    name: str
    version: str
    contract_version: str
    owner: str
    mode: str  # live | shadow
    depends_on: tuple[str, ...]
    triggers: tuple[str, ...]
    reads: dict[str, Any]
    policy: pl.DataFrame  # POLICY_SCHEMA rows
    factory: Callable[[], Agent] | None = None  # None: contract only, not implemented yet
    outputs: tuple[str, ...] = ()  # ops tables the agent's outputs go to
    replaces: tuple[str, ...] = ()  # outputs holding only the latest run's rows (a cache)
    params: dict[str, Any] = field(default_factory=dict)  # the contract's params
    expiry: dict[str, int] = field(default_factory=dict)  # action type -> days a task waits


@dataclass
class RunResult:
    agent: str
    status: str  # succeeded | failed | skipped
    run_id: str | None = None
    mode: str = "live"
    events: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_PENDING = """
SELECT e.* FROM ops.events e
WHERE e.kind IN (SELECT unnest($kinds::VARCHAR[]))
  AND NOT EXISTS (SELECT 1 FROM ops.event_consumption c
                  WHERE c.event_id = e.event_id AND c.agent = $agent)
ORDER BY e.event_id
"""
_MODE = "SELECT mode FROM ops.agent_modes WHERE agent = $agent"
_CONSUME = """
INSERT INTO ops.event_consumption
SELECT event_id, $agent, $run_id FROM consumed
ON CONFLICT DO NOTHING
"""
_INSERT_PROPOSALS = """
INSERT INTO ops.proposals
SELECT proposal_id, $run_id, $agent, action_type, object_type, record_id, field, old_value, new_value,
       confidence, evidence, reason, coalesce(tier, 2), tier_reason, status, $shadow,
       idempotency_key, $now, decided_at, NULL, NULL, final_value, raw_confidence
FROM routed
"""
# A field leased for the first time gets a row (a plain insert, cheaper than an upsert:
# docs/engine.md, Benchmarks); a field whose lease was released has its row taken again.
_LEASE = """
INSERT INTO ops.field_leases
SELECT object_type, record_id, field, $agent, proposal_id, $now, NULL
FROM leased WHERE NOT lease_row
"""
_RETAKE = """
UPDATE ops.field_leases AS l
SET agent = $agent, proposal_id = n.proposal_id, acquired_at = $now, released_at = NULL
FROM leased n
WHERE n.lease_row AND l.object_type = n.object_type AND l.record_id = n.record_id
  AND l.field = n.field AND l.released_at IS NOT NULL
"""
_SAMPLED = """
INSERT INTO ops.continuous_samples
SELECT proposal_id, $agent, action_type, graduated_by, $share, $now FROM sampled
"""
_RUN = """
INSERT INTO ops.runs VALUES ($run_id, $agent, $version, $contract_version, $mode, $trigger,
    $status, $started, $finished, $events, $proposals, $applied, $queued, $blocked, $error,
    $metadata)
"""
_CALIBRATIONS = """
INSERT INTO ops.calibrations
SELECT $run_id, $agent, action_type, judged, judged_right, intercept, slope, $now FROM fits
"""
# What only the stored proposal needs, and how many proposals are stored at a time: a
# part's wide columns are the only copy of them the commit makes.
_WIDE = ["evidence", "reason"]
_PART = 50_000
_NEXT_RUN = "SELECT 'R' || lpad(nextval('ops.run_seq')::VARCHAR, 6, '0')"

# What each routed status writes to the audit log.
_AUDIT_ACTION = {
    "applied": "apply",
    "stale": "stale",
    "pending": "propose",
    "task": "task",
    "blocked": "block",
    "shadow": "shadow",
    "superseded": "supersede",
}


def dependency_order(specs: Sequence[AgentSpec]) -> list[AgentSpec]:
    """Agents sorted so each comes after what it depends on (ties by name)."""
    by_name = {s.name: s for s in specs}
    done: list[AgentSpec] = []
    placed: set[str] = set()
    while len(done) < len(specs):
        ready = sorted(
            s.name
            for s in specs
            if s.name not in placed and all(d in placed or d not in by_name for d in s.depends_on)
        )
        if not ready:
            raise ValueError("agent dependencies form a cycle")
        for name in ready:
            done.append(by_name[name])
            placed.add(name)
    return done


def run_agents(
    wh: Warehouse,
    specs: Sequence[AgentSpec],
    *,
    only: str | None = None,
    shadow: bool = False,
    trigger: str = "events",
    definitions: Any = None,
    progress: Progress | None = None,
) -> list[RunResult]:
    """Detect changes, then run every implemented agent (or ``only``) in dependency order."""

    order = dependency_order(specs)
    if only is not None:
        order = [s for s in order if s.name == only]

    def prepare(con: duckdb.DuckDBPyConnection) -> None:
        seed_identity(con, now=now_utc())
        detect_changes(con, now=now_utc())
        expire_tasks(con, order, now=now_utc())

    in_transaction(wh, prepare)
    results: list[RunResult] = []
    failed: set[str] = set()
    shared = SharedReads.for_run([s.reads for s in order if s.factory is not None])
    for i, spec in enumerate(order):
        report(progress, "agents", i, len(order))
        if spec.factory is None:
            results.append(
                RunResult(spec.name, "skipped", mode=spec.mode, message="not implemented yet")
            )
            continue
        blocked_by = [d for d in spec.depends_on if d in failed]
        if blocked_by:
            results.append(
                RunResult(spec.name, "skipped", message=f"{', '.join(blocked_by)} failed")
            )
            shared.finished(spec.reads)
            failed.add(spec.name)
            continue
        result = _run_one(
            wh,
            spec,
            shadow=shadow,
            trigger=trigger,
            forced=only is not None,
            definitions=definitions,
            shared=shared,
        )
        shared.finished(spec.reads)
        # What the agent's reads left in DuckDB's cache, and what it let go of, leave the
        # process before the next agent's peak, not beneath it (``Warehouse.let_go``,
        # ``data.memory``).
        wh.let_go()
        give_back()
        if result.status == "failed":
            failed.add(spec.name)
        results.append(result)
    report(progress, "agents", len(order), len(order))
    return results


def _run_one(
    wh: Warehouse,
    spec: AgentSpec,
    *,
    shadow: bool,
    trigger: str,
    forced: bool,
    definitions: Any,
    shared: SharedReads | None = None,
) -> RunResult:
    started = now_utc()
    clock = time.perf_counter()
    with wh.connect() as con:
        events = frame(con, _PENDING, {"kinds": list(spec.triggers), "agent": spec.name})
        stored_mode = scalar(con, _MODE, {"agent": spec.name})
        as_of = data_as_of(con) or started
    mode = "shadow" if shadow else str(stored_mode or spec.mode)
    if events.is_empty() and trigger == "events" and not forced:
        return RunResult(spec.name, "skipped", mode=mode, message="no pending events")

    if definitions is None:  # the shipped definitions.yaml, as the CLI would pass
        from revstack.contracts import load_definitions

        definitions = load_definitions(None)
    ctx = Context(
        wh,
        agent=spec.name,
        reads=spec.reads,
        as_of=as_of,
        events=events,
        definitions=definitions,
        params=spec.params,
        shared=shared,
    )
    try:
        agent: Agent = spec.factory()  # type: ignore[misc]
        output: AgentResult = agent.run(ctx)
        ctx.let_go()
        scratch_con = scratch()  # validation needs no warehouse
        try:
            good, bad = validate_proposals(scratch_con, output.proposals)
        finally:
            scratch_con.close()
        _check_outputs(wh, spec, output.outputs)
    except Exception as exc:
        return _record_failure(wh, spec, mode, trigger, started, events, exc, clock)

    metadata = {
        **output.metadata,
        **({"note": output.note} if output.note else {}),
        "skipped_inputs": ctx.skipped[:200],
        "skipped_inputs_total": len(ctx.skipped),
    }

    def work(con: duckdb.DuckDBPyConnection) -> RunResult:
        return _commit(
            con,
            spec,
            mode,
            trigger,
            started,
            events,
            good,
            bad,
            metadata,
            ctx.read_log,
            clock,
            output.outputs,
            sorted(ctx.queried),
        )

    try:
        return in_transaction(wh, work)
    except AgentOutputError as exc:  # the whole run rolled back; record why
        return _record_failure(wh, spec, mode, trigger, started, events, exc, clock)


_OUTPUT_COLUMNS = """
SELECT column_name FROM information_schema.columns
WHERE table_catalog = current_database() AND table_schema = 'ops' AND table_name = $table
"""


def _check_outputs(wh: Warehouse, spec: AgentSpec, outputs: dict[str, pl.DataFrame]) -> None:
    """Outputs go only to the ops tables the contract declares, with columns they have."""
    undeclared = sorted(set(outputs) - set(spec.outputs))
    if undeclared:
        raise AgentOutputError(
            f"{spec.name} returned outputs for {', '.join(undeclared)}, which its contract "
            f"does not declare under outputs ({', '.join(spec.outputs) or 'none declared'})"
        )
    with wh.connect() as con:
        for table, data in outputs.items():
            columns = {
                r[0]
                for r in con.execute(_OUTPUT_COLUMNS, {"table": table.split(".")[1]}).fetchall()
            }
            unknown = sorted(set(data.columns) - columns)
            if not columns or unknown or "run_id" in data.columns:
                problem = (
                    f"no table {table}"
                    if not columns
                    else f"columns {unknown} are not in {table}"
                    if unknown
                    else "run_id is set by the engine"
                )
                raise AgentOutputError(f"{spec.name}: output for {table}: {problem}")


def _write_outputs(
    con: duckdb.DuckDBPyConnection,
    outputs: dict[str, pl.DataFrame],
    run_id: str,
    replaces: tuple[str, ...] = (),
) -> dict[str, int]:
    written = {}
    for table, data in sorted(outputs.items()):
        schema, name = table.split(".")  # checked against the catalog in _check_outputs
        if table in replaces:  # in the run's transaction: a failed run keeps the old rows
            con.execute(f'DELETE FROM "{schema}"."{name}"')
        if data.is_empty():
            continue
        try:
            with registered(con, "agent_rows", data):
                con.execute(
                    f'INSERT INTO "{schema}"."{name}" BY NAME '
                    "SELECT *, $run_id AS run_id FROM agent_rows",
                    {"run_id": run_id},
                )
        except duckdb.Error as exc:
            if is_conflict(exc):
                raise
            raise AgentOutputError(f"output for {table} could not be stored: {exc}") from exc
        written[table] = len(data)
    return written


def _commit(
    con: duckdb.DuckDBPyConnection,
    spec: AgentSpec,
    mode: str,
    trigger: str,
    started: dt.datetime,
    events: pl.DataFrame,
    good: pl.DataFrame,
    bad: pl.DataFrame,
    metadata: dict[str, Any],
    read_log: dict[str, int],
    clock: float,
    outputs: dict[str, pl.DataFrame],
    queried: list[str],
) -> RunResult:
    run_id = str(scalar(con, _NEXT_RUN))
    now = now_utc()
    shadow = mode == "shadow"
    maps = fit_calibrations(con, spec.name)
    # The wide columns (evidence, the agent's reason) stay where the agent put them and
    # are fetched by position, part by part, only to be stored: routing, applying and
    # the audit read the rest, so no step copies the whole proposal set with its JSON.
    wide = good.select(_WIDE)
    good = calibrate(good.drop(_WIDE).with_row_index("source_row"), maps)
    routed = route(con, good, spec.policy, agent=spec.name, shadow=shadow).with_row_index("ord")
    routed = routed.with_columns(
        decided_at=pl.lit(None, pl.Datetime("us")), final_value=pl.lit(None, pl.String)
    )
    # Output-only actions (no field: a flag, a briefing) take effect by being recorded.
    to_apply = routed.filter((pl.col("status") == "apply") & pl.col("field").is_not_null())
    applied = pl.DataFrame(
        schema={"ord": pl.UInt32, "applied": pl.Boolean, "before": pl.String, "after": pl.String}
    )
    if not to_apply.is_empty():
        result = apply_batch(
            con,
            to_apply.select(
                pl.col("ord").cast(pl.String).alias("proposal_id"),
                "object_type",
                "record_id",
                "field",
                "old_value",
                "new_value",
            ),
            now=now,
        )
        applied = result.with_columns(ord=pl.col("proposal_id").cast(pl.UInt32)).drop("proposal_id")
    routed = (
        routed.join(applied, on="ord", how="left")
        .with_columns(
            status=pl.when(pl.col("status") != "apply")
            .then("status")
            .when(pl.col("applied") | pl.col("field").is_null())
            .then(pl.lit("applied"))
            .otherwise(pl.lit("stale")),
        )
        .with_columns(
            decided_at=pl.when(pl.col("status") == "applied").then(pl.lit(now)).otherwise(None),
            final_value=pl.when(pl.col("status") == "applied").then("new_value").otherwise(None),
        )
    )
    deferred = routed.filter(pl.col("status") == "deferred")
    # Proposal ids are the run's id and a number within it (R000012-7): readable, and
    # known before the insert, so nothing has to be read back. Numbered in the order of
    # their keys, not of the agent's rows (a polars group-by need not keep an order), so
    # the same proposals get the same ids and a seeded batch sample draws the same ones.
    stored = (
        routed.filter(pl.col("status") != "deferred")
        .sort("idempotency_key")
        .with_columns(proposal_id=pl.format("{}-{}", pl.lit(run_id), pl.int_range(1, pl.len() + 1)))
    )
    _insert_proposals(
        con, stored, wide, {"run_id": run_id, "agent": spec.name, "shadow": shadow, "now": now}
    )
    sampled = stored.filter(pl.col("continuous_sample") & (pl.col("status") == "pending"))
    if not sampled.is_empty():
        with registered(
            con, "sampled", sampled.select("proposal_id", "action_type", "graduated_by")
        ):
            con.execute(_SAMPLED, {"agent": spec.name, "share": CONTINUOUS_SHARE, "now": now})
    leased = stored.filter((pl.col("status") == "pending") & pl.col("field").is_not_null())
    if not leased.is_empty():
        again = int(leased["lease_row"].sum())
        with registered(
            con,
            "leased",
            leased.select("object_type", "record_id", "field", "proposal_id", "lease_row"),
        ):
            if again < len(leased):
                con.execute(_LEASE, {"agent": spec.name, "now": now})
            if again and scalar(con, _RETAKE, {"agent": spec.name, "now": now}) != again:
                raise duckdb.TransactionException("Conflict on a field lease; retry")
    if not events.is_empty():
        with registered(con, "consumed", events.select(pl.col("event_id").cast(pl.Int64))):
            con.execute(_CONSUME, {"agent": spec.name, "run_id": run_id})
    if counts_applied(stored):
        _own_echo(con, stored, now, spec.name, run_id)

    used = sorted(set(maps) & set(stored["action_type"]))
    if used:
        fits = pl.DataFrame([vars(maps[a]) for a in used])
        with registered(con, "fits", fits):
            con.execute(_CALIBRATIONS, {"run_id": run_id, "agent": spec.name, "now": now})
        metadata = {**metadata, "calibrated": {a: maps[a].judged for a in used}}
    counts = {k: int(v) for k, v in stored.group_by("status").len().iter_rows()}
    counts["deferred"] = len(deferred)
    counts["skipped_invalid"] = len(bad)
    metadata = {**metadata, "outputs": _write_outputs(con, outputs, run_id, spec.replaces)}
    _audit_run(
        con, spec, run_id, mode, stored, deferred, bad, read_log, queried, counts, metadata, now
    )
    finished = now_utc()
    con.execute(
        _RUN,
        {
            "run_id": run_id,
            "agent": spec.name,
            "version": spec.version,
            "contract_version": spec.contract_version,
            "mode": mode,
            "trigger": trigger,
            "status": "succeeded",
            "started": started,
            "finished": finished,
            "events": len(events),
            "proposals": len(stored),
            "applied": counts.get("applied", 0),
            "queued": counts.get("pending", 0) + counts.get("task", 0),
            "blocked": counts.get("blocked", 0),
            "error": None,
            "metadata": json.dumps({"counts": counts, "agent": metadata}, default=str),
        },
    )
    return RunResult(
        spec.name,
        "succeeded",
        run_id,
        mode,
        len(events),
        counts,
        time.perf_counter() - clock,
        str(metadata.get("note", "")),
    )


def _insert_proposals(
    con: duckdb.DuckDBPyConnection, stored: pl.DataFrame, wide: pl.DataFrame, params: dict[str, Any]
) -> None:
    """Store the routed proposals in key order, joined to their wide columns a part at a
    time (in the run's transaction: a failed run stores none of them)."""
    for start in range(0, len(stored), _PART):
        part = stored.slice(start, _PART)
        part = part.hstack(wide[part["source_row"]])
        with registered(con, "routed", part):
            con.execute(_INSERT_PROPOSALS, params)


def counts_applied(stored: pl.DataFrame) -> bool:
    return bool((stored["status"] == "applied").any())


# The echo's events were made by this transaction, so no one can have consumed them.
_CONSUME_ECHO = """
INSERT INTO ops.event_consumption
SELECT event_id, $agent, $run_id FROM ops.events WHERE event_id > $after
"""


def _own_echo(
    con: duckdb.DuckDBPyConnection, stored: pl.DataFrame, now: dt.datetime, agent: str, run_id: str
) -> None:
    """Record the change events of this run's own writes, consumed by the run itself.

    Other agents hear about what this agent changed; the agent itself does not
    re-trigger on its own echo. Only the written records are compared (a full comparison
    reads every CRM row, for every run that applies anything: docs/engine.md, Events and
    schedules); whatever else changed meanwhile is found by the next run's full look.
    """
    after = int(scalar(con, "SELECT coalesce(max(event_id), 0) FROM ops.events"))
    written = (
        stored.filter(pl.col("status") == "applied").select("object_type", "record_id").unique()
    )
    if detect_changes(con, now=now, scope=written):
        con.execute(_CONSUME_ECHO, {"agent": agent, "run_id": run_id, "after": after})


def _audit_run(
    con: duckdb.DuckDBPyConnection,
    spec: AgentSpec,
    run_id: str,
    mode: str,
    stored: pl.DataFrame,
    deferred: pl.DataFrame,
    bad: pl.DataFrame,
    read_log: dict[str, int],
    queried: list[str],
    counts: dict[str, int],
    metadata: dict[str, Any],
    now: dt.datetime,
) -> None:
    head = pl.DataFrame(
        {
            "actor": [spec.name],
            "actor_kind": ["agent"],
            "action": ["read"],
            "run_id": [run_id],
            "detail": [
                to_json(
                    {
                        "rows_read": read_log,
                        # tables queried where they lie (Context.warehouse): their rows
                        # were read by DuckDB, not counted into frames
                        "queried_in_warehouse": queried,
                        "mode": mode,
                        "counts": counts,
                        "skipped_inputs": metadata.get("skipped_inputs_total", 0),
                        "outputs": metadata.get("outputs", {}),
                    }
                )
            ],
        }
    )
    rows = stored.select(
        actor=pl.lit(spec.name),
        actor_kind=pl.lit("agent"),
        action=pl.col("status").replace_strict(_AUDIT_ACTION, default="propose"),
        object_type="object_type",
        record_id="record_id",
        field="field",
        before=pl.when(pl.col("status") == "applied").then("before").otherwise("old_value"),
        after=pl.when(pl.col("status") == "applied").then("after").otherwise("new_value"),
        proposal_id="proposal_id",
        run_id=pl.lit(run_id),
        detail=pl.concat_str(
            [
                pl.lit('{"tier":'),
                pl.col("tier").cast(pl.String).fill_null("null"),
                pl.lit(',"confidence":'),
                pl.col("confidence").round(4).cast(pl.String),
                pl.lit(',"shadow":'),
                pl.lit("true" if mode == "shadow" else "false"),
                pl.lit("}"),
            ]
        ),
    )
    extra = [
        _unrecorded(part, spec.name, run_id, action, key, column)
        for part, action, key, column in (
            (deferred, "defer", "reason", "tier_reason"),
            (bad, "skip", "invalid", "problem"),
        )
        if not part.is_empty()
    ]
    append(con, pl.concat([head, rows, *extra], how="diagonal_relaxed"), at=now)


def _unrecorded(
    part: pl.DataFrame, agent: str, run_id: str, action: str, key: str, column: str
) -> pl.DataFrame:
    """Audit rows for proposals that were not recorded (deferred, or invalid), with why."""
    return part.select(
        actor=pl.lit(agent),
        actor_kind=pl.lit("agent"),
        action=pl.lit(action),
        object_type="object_type",
        record_id="record_id",
        field="field",
        before="old_value",
        after="new_value",
        run_id=pl.lit(run_id),
        detail=pl.col(column).map_elements(lambda r: to_json({key: r}), return_dtype=pl.String),
    )


def _record_failure(
    wh: Warehouse,
    spec: AgentSpec,
    mode: str,
    trigger: str,
    started: dt.datetime,
    events: pl.DataFrame,
    exc: BaseException,
    clock: float,
) -> RunResult:
    message = f"{type(exc).__name__}: {exc}"

    def work(con: duckdb.DuckDBPyConnection) -> str:
        run_id = str(scalar(con, _NEXT_RUN))
        con.execute(
            _RUN,
            {
                "run_id": run_id,
                "agent": spec.name,
                "version": spec.version,
                "contract_version": spec.contract_version,
                "mode": mode,
                "trigger": trigger,
                "status": "failed",
                "started": started,
                "finished": now_utc(),
                "events": len(events),
                "proposals": 0,
                "applied": 0,
                "queued": 0,
                "blocked": 0,
                "error": message[:2000],
                "metadata": json.dumps({"traceback": traceback.format_exception(exc)[-5:]}),
            },
        )
        append(
            con,
            pl.DataFrame(
                {
                    "actor": [spec.name],
                    "actor_kind": ["agent"],
                    "action": ["error"],
                    "run_id": [run_id],
                    "detail": [to_json({"error": message[:2000]})],
                }
            ),
        )
        return run_id

    run_id = in_transaction(wh, work)
    return RunResult(
        spec.name, "failed", run_id, mode, len(events), {}, time.perf_counter() - clock, message
    )
