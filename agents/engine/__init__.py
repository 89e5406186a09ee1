"""The orchestration engine: what an agent is, runs, routing by contract and tier,
decisions, the hash-chained audit log, rollback, people and policy.

This module is the engine's whole public face; its ``_`` modules are private (ruff's
banned-api rule keeps other packages out of them). An agent subclasses ``Agent`` and
reads through ``Context``; the CLI and the dashboard call the functions below, each
taking a ``Warehouse`` (or a connection) first.
"""

from revstack.agents.engine._agent import AccessDenied, Agent, AgentResult, Context, empty_proposals
from revstack.agents.engine._apply import InvalidValue
from revstack.agents.engine._audit import (
    GENESIS,
    AuditEntry,
    ChainReport,
    anchor,
    append,
    to_json,
    verify,
)
from revstack.agents.engine._batches import (
    BANDS,
    BatchDecision,
    batch_evidence,
    batch_status,
    decide_batch,
    extend_sample,
    open_batches,
    sample_cards,
)
from revstack.agents.engine._briefings import (
    CHANNELS,
    briefing,
    deal_exists,
    latest_briefing,
    list_briefings,
    record_open,
)
from revstack.agents.engine._calibrate import (
    MIN_JUDGED,
    PRIOR_SD_INTERCEPT,
    PRIOR_SD_SLOPE,
    Calibration,
    calibrate,
    fit_calibration,
    fit_calibrations,
)
from revstack.agents.engine._catalog import (
    OBJECTS,
    CrmObject,
    EngineError,
    check_field,
    column_types,
)
from revstack.agents.engine._context import SharedReads, WarehouseQueries
from revstack.agents.engine._decide import REASON_CODES, Decision, decide, parse_value
from revstack.agents.engine._drafts import (
    SEQUENCER_COLUMNS,
    approve_draft,
    draft_queue,
    edit_draft,
    export_drafts,
    load_outcomes,
)
from revstack.agents.engine._events import EVENT_KINDS, detect_changes, record_schedule
from revstack.agents.engine._export import ID_COLUMN, export_changes
from revstack.agents.engine._feedback import (
    FEEDBACK_KINDS,
    acknowledge,
    address,
    feedback,
    flag_output,
)
from revstack.agents.engine._identity import identity_labels, mark_pair
from revstack.agents.engine._people import ROLES, add_person, check_role, people, require_role
from revstack.agents.engine._policy import MODES, active_policy, set_mode, set_policy
from revstack.agents.engine._proposals import PROPOSAL_INPUT, AgentOutputError, validate_proposals
from revstack.agents.engine._queries import (
    audit_rows,
    count_proposals,
    get_proposal,
    list_proposals,
)
from revstack.agents.engine._rollback import RollbackReport, rollback
from revstack.agents.engine._route import CONTINUOUS_SHARE, POLICY_SCHEMA, route
from revstack.agents.engine._run import AgentSpec, RunResult, dependency_order, run_agents
from revstack.agents.engine._sampling import (
    Evidence,
    error_lower_bound,
    error_upper_bound,
    evidence,
    look_confidence,
    sample_size,
    still_needed,
    stratified_share,
    wilson,
)

__all__ = [
    # what an agent is
    "AccessDenied",
    "Agent",
    "AgentOutputError",
    "AgentResult",
    "Context",
    "SharedReads",
    "WarehouseQueries",
    "PROPOSAL_INPUT",
    "empty_proposals",
    "validate_proposals",
    # runs
    "AgentSpec",
    "CONTINUOUS_SHARE",
    "EVENT_KINDS",
    "POLICY_SCHEMA",
    "RunResult",
    "dependency_order",
    "detect_changes",
    "record_schedule",
    "route",
    "run_agents",
    # confidence as a probability: the map from an agent's score, fitted on decisions
    "MIN_JUDGED",
    "PRIOR_SD_INTERCEPT",
    "PRIOR_SD_SLOPE",
    "Calibration",
    "calibrate",
    "fit_calibration",
    "fit_calibrations",
    # decisions and the queue
    "Decision",
    "REASON_CODES",
    "audit_rows",
    "count_proposals",
    "decide",
    "get_proposal",
    "list_proposals",
    "parse_value",
    # review at scale: batches, their samples and the evidence
    "BANDS",
    "BatchDecision",
    "Evidence",
    "batch_evidence",
    "batch_status",
    "decide_batch",
    "error_lower_bound",
    "error_upper_bound",
    "evidence",
    "extend_sample",
    "look_confidence",
    "open_batches",
    "sample_cards",
    "sample_size",
    "still_needed",
    "stratified_share",
    "wilson",
    # rollback
    "RollbackReport",
    "rollback",
    # people and policy
    "MODES",
    "ROLES",
    "active_policy",
    "add_person",
    "check_role",
    "people",
    "require_role",
    "set_mode",
    "set_policy",
    # the audit log
    "GENESIS",
    "AuditEntry",
    "ChainReport",
    "anchor",
    "append",
    "to_json",
    "verify",
    # the CRM objects the engine writes, and what it hands to people
    "CHANNELS",
    "ID_COLUMN",
    "OBJECTS",
    "SEQUENCER_COLUMNS",
    "CrmObject",
    "approve_draft",
    "briefing",
    "check_field",
    "column_types",
    "deal_exists",
    "draft_queue",
    "edit_draft",
    "export_changes",
    "export_drafts",
    "latest_briefing",
    "list_briefings",
    "load_outcomes",
    "record_open",
    # the feedback channel
    "FEEDBACK_KINDS",
    "acknowledge",
    "address",
    "feedback",
    "flag_output",
    # people's answers about identity pairs (clerical review)
    "identity_labels",
    "mark_pair",
    # errors
    "EngineError",
    "InvalidValue",
]
