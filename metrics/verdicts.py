"""What the generator's truth says of each proposal: right, wrong, or it cannot tell.

The judge behind simulated reviewers (a reviewer profile agrees with the verdict at its
own rate) and behind every "against truth" figure of the hygiene agent. Per action:

- merge_accounts, merge_contacts: right when truth puts both records in one entity;
- enrich_empty_field, correct_field: right when the value matches the true firmographics
  (text fields exactly but for case, numbers within 25%);
- move_stage: right when the deal carries an injected stage violation (a deal whose
  criteria fail because a field was blanked is not: the stage was right, the field is
  what is missing); close_phantom_deal: right when the deal is an injected phantom;
- move_to_at_risk (pipeline health): right when, within 90 days of the proposal, the deal
  was lost, won or moved (truth.slips) into a later quarter than the one its close date
  stood in when proposed, or that quarter ended with it still open, as pipeline
  health's backtest labels a risk; no verdict while those 90 days run past truth's as-of.

Anything else (flags, briefings, drafts, forecasts) gets no verdict here (null).
"""

from __future__ import annotations

import duckdb
import polars as pl

from revstack.data.warehouse import frame, scalar
from revstack.metrics.remembered import remembered

__all__ = ["ENRICH_VERDICTS", "MERGE_VERDICTS", "truth_verdicts"]

MERGE_VERDICTS = """
SELECT p.proposal_id, split_part(p.record_id, ':', 1) AS kind, p.status,
       t1.true_entity_id = t2.true_entity_id AS correct
FROM ops.proposals p
JOIN truth.entities t1 ON t1.object_type = split_part(p.record_id, ':', 1) AND t1.record_id = split_part(p.record_id, ':', 2)
JOIN truth.entities t2 ON t2.object_type = t1.object_type AND t2.record_id = p.new_value ->> '$'
WHERE p.agent = 'crm_hygiene' AND p.action_type IN ('merge_accounts', 'merge_contacts')
"""
ENRICH_VERDICTS = """
SELECT p.proposal_id, p.field, p.status, p.action_type,
       CASE p.field
         WHEN 'industry' THEN lower(p.new_value ->> '$') = lower(f.industry)
         WHEN 'country' THEN lower(p.new_value ->> '$') = lower(f.country)
         WHEN 'employees' THEN abs(CAST(p.new_value ->> '$' AS DOUBLE) - f.employees) <= 0.25 * f.employees
         WHEN 'annual_revenue' THEN abs(CAST(p.new_value ->> '$' AS DOUBLE) - f.annual_revenue) <= 0.25 * f.annual_revenue
       END AS correct
FROM ops.proposals p JOIN truth.firmographics f ON f.account_id = p.record_id
WHERE p.agent = 'crm_hygiene' AND p.action_type IN ('enrich_empty_field', 'correct_field')
"""
_DEALS = """
SELECT p.proposal_id,
       EXISTS (SELECT 1 FROM truth.defects d
               WHERE d.object_type = 'opportunities' AND d.record_id = p.record_id
                 AND d.defect_class = CASE p.action_type WHEN 'move_stage' THEN 'stage_violation'
                                                         ELSE 'phantom_deal' END) AS correct
FROM ops.proposals p
WHERE p.agent = 'crm_hygiene' AND p.action_type IN ('move_stage', 'close_phantom_deal')
"""
_AT_RISK = """
WITH p AS (
    SELECT p.proposal_id, p.record_id, p.created_at,
           (SELECT arg_max(h.close_date, (h.changed_at, h.history_id))
            FROM crm.opportunity_history h
            WHERE h.opportunity_id = p.record_id AND h.changed_at <= p.created_at) AS close_date
    FROM ops.proposals p
    WHERE p.agent = 'pipeline_health' AND p.action_type = 'move_to_at_risk'),
q AS (
    SELECT *, date_trunc('quarter', close_date) AS q,
           date_trunc('quarter', close_date) + INTERVAL 3 MONTH AS q_end,
           created_at + INTERVAL 90 DAY AS horizon
    FROM p WHERE close_date IS NOT NULL),
judged AS (
    SELECT q.proposal_id, q.horizon,
           (o.outcome = 'lost' AND o.outcome_date <= q.horizon)
           OR (o.outcome = 'won' AND o.outcome_date > q.created_at AND o.outcome_date <= q.horizon
               AND date_trunc('quarter', o.outcome_date) > q.q)
           OR EXISTS (SELECT 1 FROM truth.slips s
                      WHERE s.opportunity_id = q.record_id AND s.slipped_at > q.created_at
                        AND s.slipped_at <= q.horizon
                        AND date_trunc('quarter', s.new_close_date) > q.q)
           OR (q.q_end <= q.horizon AND (o.outcome_date IS NULL OR o.outcome_date >= q.q_end))
               AS risk
    FROM q LEFT JOIN truth.deal_outcomes o ON o.opportunity_id = q.record_id)
SELECT proposal_id,
       CASE WHEN coalesce(risk, FALSE) THEN TRUE
            WHEN horizon <= (SELECT max(as_of) FROM truth.generation) THEN FALSE END AS correct
FROM judged
"""
_HAS_TRUTH = """
SELECT count(*) FROM information_schema.tables
WHERE table_schema = 'truth' AND table_name IN ('entities', 'firmographics', 'defects')
"""


@remembered  # a decision changes no verdict: it reads no column a decision writes
def truth_verdicts(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """proposal_id, correct (True / False) for every proposal truth can judge; empty on a
    warehouse without the generator's truth."""
    schema = pl.Schema({"proposal_id": pl.String(), "correct": pl.Boolean()})
    if int(scalar(con, _HAS_TRUTH) or 0) < 3:
        return pl.DataFrame(schema=schema)
    parts = [
        frame(con, sql).select("proposal_id", "correct")
        for sql in (MERGE_VERDICTS, ENRICH_VERDICTS, _DEALS, _AT_RISK)
    ]
    return pl.concat(parts).filter(pl.col("correct").is_not_null()).cast(schema)
