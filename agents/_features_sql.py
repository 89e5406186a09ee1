"""The SQL behind ``agents.features``: a deal's state as of each moment, from history.

Every step reads only rows stamped at or before the moment (``<= as_of``): history rows
by ``changed_at``, activities by ``occurred_at``, buying roles by ``added_at``, contact
departures by the contact record's ``updated_at``. Running counts are computed once per
row (window functions) and picked per moment with ASOF joins, so many weekly moments
cost one pass over the tables, not one pass each. Every activity figure rides on one
table of running counts, so a moment costs two ASOF joins on activities (at it and 30
days before it), not six (on mid, 109 moments: 25 s -> see docs/pipeline_health.md, Speed).
"""

from __future__ import annotations

__all__ = ["PART_H", "PART_REPLY", "PART_STATES", "PART_TOUCH", "STATES", "STATES_AT", "STATES_ONE"]

# $moments: TIMESTAMP[]; $closed / $won: stage keys (definitions.yaml); $open_only: BOOLEAN.
STATES = """
WITH moments AS (SELECT DISTINCT unnest($moments::TIMESTAMP[]) AS as_of),
h0 AS (
    SELECT h.*,
           lag(close_date) OVER w AS prev_close,
           lag(amount) OVER w AS prev_amount,
           lag(stage) OVER w AS prev_stage,
           lead(changed_at) OVER w AS next_at,
           list_contains($closed::VARCHAR[], stage) AS closed_row
    FROM crm.opportunity_history h
    WINDOW w AS (PARTITION BY opportunity_id ORDER BY changed_at, history_id)
),
h1 AS (
    SELECT *,
           -- a push: the rep moved the close date later while the deal stayed open (the
           -- close-out row resets the date to the day it closed; that is not a push)
           (NOT closed_row AND prev_close IS NOT NULL AND close_date > prev_close) AS is_push
    FROM h0
),
h AS (
    SELECT opportunity_id, changed_at, coalesce(next_at, TIMESTAMP '9999-12-31') AS next_at,
           stage, amount, close_date, forecast_category, probability, changed_by AS owner_id,
           closed_row,
           min(changed_at) OVER w AS opened_at,
           first_value(amount) OVER w AS first_amount,
           first_value(close_date) OVER w AS first_close_date,
           sum(is_push::INT) OVER w AS close_date_pushes,
           sum((is_push AND date_trunc('quarter', close_date)
                            > date_trunc('quarter', prev_close))::INT) OVER w AS pushes_out_of_quarter,
           max(CASE WHEN is_push THEN changed_at END) OVER w AS last_push_at,
           sum((prev_amount IS NOT NULL AND amount IS DISTINCT FROM prev_amount)::INT) OVER w
               AS amount_changes,
           sum((prev_amount IS NOT NULL AND amount < prev_amount)::INT) OVER w AS amount_decreases,
           max(CASE WHEN prev_amount IS NOT NULL AND amount IS DISTINCT FROM prev_amount
                    THEN changed_at END) OVER w AS last_amount_change_at,
           max(CASE WHEN prev_stage IS NULL OR stage <> prev_stage THEN changed_at END) OVER w
               AS stage_entered_at
    FROM h1
    WINDOW w AS (PARTITION BY opportunity_id ORDER BY changed_at, history_id
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
state AS MATERIALIZED (  -- the history row in force at each moment: changed_at <= as_of < next change
    SELECT m.as_of, h.* FROM moments m
    JOIN h ON h.changed_at <= m.as_of AND m.as_of < h.next_at
    WHERE NOT ($open_only AND h.closed_row)
),
acts AS (
    SELECT opportunity_id, contact_id, occurred_at,
           direction IN ('inbound', 'two_way') AS answered
    FROM crm.activities
    WHERE status = 'completed' AND occurred_at <= (SELECT max(as_of) FROM moments)
      AND opportunity_id IN (SELECT opportunity_id FROM state)  -- only deals asked about
),
-- Running counts include every row stamped at or before a row's time (RANGE frames, not
-- row_number): two touches logged in the same second share one count, so the ASOF joins
-- below pick the same number whichever of the two they land on. row_number would number
-- ties in whatever order the scan ran, and two runs on the same data could then differ
-- (docs/forecast.md, Row order).
reply AS MATERIALIZED (  -- completed inbound / two-way touches
    SELECT opportunity_id, contact_id, occurred_at FROM acts WHERE answered
),
-- Every completed touch with every running figure a moment needs, so one ASOF join per
-- moment (and one 30 days before it) reads them all: touches, outbound touches, answers,
-- the last answer, contacts engaged so far (a contact counts from its first answer), and
-- the outbound count as it stood at the last answer (chasing without a reply since).
touch0 AS (
    SELECT opportunity_id, occurred_at, answered,
           answered AND contact_id IS NOT NULL
               AND row_number() OVER (PARTITION BY opportunity_id, contact_id, answered
                                      ORDER BY occurred_at) = 1 AS first_answer
    FROM acts
),
touch1 AS (
    SELECT opportunity_id, occurred_at, answered,
           count(*) OVER w AS n,
           sum((NOT answered)::INT) OVER w AS outbound_n,
           sum(answered::INT) OVER w AS replies_n,
           max(CASE WHEN answered THEN occurred_at END) OVER w AS last_two_way_at,
           sum(first_answer::INT) OVER w AS engaged_k
    FROM touch0
    WINDOW w AS (PARTITION BY opportunity_id ORDER BY occurred_at
                 RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
touch AS MATERIALIZED (
    SELECT *, max(CASE WHEN answered THEN outbound_n END) OVER (
                  PARTITION BY opportunity_id ORDER BY occurred_at
                  RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS outbound_at_answer
    FROM touch1
),
a AS MATERIALIZED (
    SELECT s.as_of, s.opportunity_id,
           t.last_two_way_at, coalesce(t.replies_n, 0) AS replies_n,
           t.occurred_at AS last_activity_at, coalesce(t.n, 0) AS touches_n,
           coalesce(t.outbound_n, 0) AS outbound_n,
           coalesce(t.outbound_n, 0) - coalesce(t.outbound_at_answer, 0) AS unanswered,
           coalesce(t.engaged_k, 0) AS engaged_contacts
    FROM state s
    ASOF LEFT JOIN touch t ON s.opportunity_id = t.opportunity_id AND s.as_of >= t.occurred_at
),
a30 AS (  -- the same running counts 30 days earlier, so their difference is the last 30 days
    SELECT s.as_of, s.opportunity_id, coalesce(t.replies_n, 0) AS replies_n,
           coalesce(t.outbound_n, 0) AS outbound_n
    FROM state s
    ASOF LEFT JOIN touch t
        ON s.opportunity_id = t.opportunity_id AND s.as_of - INTERVAL 30 DAY >= t.occurred_at
),
e30 AS (
    SELECT s.as_of, s.opportunity_id, count(DISTINCT r.contact_id) AS engaged_30d
    FROM state s JOIN reply r
      ON r.opportunity_id = s.opportunity_id AND r.occurred_at <= s.as_of
     AND r.occurred_at > s.as_of - INTERVAL 30 DAY
    GROUP BY ALL
),
roles AS (
    SELECT s.as_of, s.opportunity_id,
           count(*) AS contacts_on_deal,
           bool_or(oc.role = 'champion') AS has_champion,
           bool_or(oc.role = 'economic_buyer') AS has_economic_buyer,
           -- today's is_active / email_bounced were already true at as_of only if the
           -- contact record has not changed since (updated_at <= as_of)
           bool_or(oc.role = 'champion' AND (NOT c.is_active OR c.email_bounced)
                   AND c.updated_at <= s.as_of) AS champion_left,
           bool_or(oc.role = 'economic_buyer' AND (NOT c.is_active OR c.email_bounced)
                   AND c.updated_at <= s.as_of) AS economic_buyer_left
    FROM state s
    JOIN crm.opportunity_contacts oc
      ON oc.opportunity_id = s.opportunity_id AND coalesce(oc.added_at, s.opened_at) <= s.as_of
    LEFT JOIN crm.contacts c ON c.contact_id = oc.contact_id
    GROUP BY ALL
),
champ AS (  -- the champion's last answer at or before as_of
    SELECT s.as_of, s.opportunity_id, max(r.occurred_at) AS champion_last_reply_at
    FROM state s
    JOIN crm.opportunity_contacts oc
      ON oc.opportunity_id = s.opportunity_id AND oc.role = 'champion'
    JOIN reply r ON r.opportunity_id = s.opportunity_id AND r.contact_id = oc.contact_id
                AND r.occurred_at <= s.as_of
    GROUP BY ALL
)
SELECT s.as_of, s.opportunity_id, s.owner_id, s.opened_at AS created_at,
       s.stage, s.amount, s.close_date, s.forecast_category, s.probability,
       s.closed_row AS is_closed, list_contains($won::VARCHAR[], s.stage) AS is_won,
       date_diff('day', s.opened_at, s.as_of) AS days_open,
       s.stage_entered_at, date_diff('day', s.stage_entered_at, s.as_of) AS days_in_stage,
       s.close_date_pushes, s.pushes_out_of_quarter, s.last_push_at,
       date_diff('day', s.last_push_at, s.as_of) AS days_since_push,
       s.first_close_date, date_diff('day', s.first_close_date, s.close_date) AS close_date_moved_days,
       date_diff('day', s.as_of::DATE, s.close_date) AS days_to_close,
       s.first_amount, s.amount_changes, s.amount_decreases, s.last_amount_change_at,
       CASE WHEN s.first_amount > 0 THEN (s.amount / s.first_amount)::DOUBLE END AS amount_ratio,
       a.last_two_way_at,
       date_diff('day', coalesce(a.last_two_way_at, s.opened_at), s.as_of) AS days_since_two_way,
       a.last_activity_at,
       date_diff('day', coalesce(a.last_activity_at, s.opened_at), s.as_of) AS days_since_activity,
       (a.replies_n - coalesce(a30.replies_n, 0))::INT AS two_way_30d,
       (a.outbound_n - coalesce(a30.outbound_n, 0))::INT AS outbound_30d,
       a.unanswered::INT AS outbound_since_two_way,
       a.engaged_contacts::INT AS engaged_contacts,
       coalesce(e30.engaged_30d, 0)::INT AS engaged_30d,
       coalesce(roles.contacts_on_deal, 0)::INT AS contacts_on_deal,
       coalesce(roles.has_champion, FALSE) AS has_champion,
       coalesce(roles.has_economic_buyer, FALSE) AS has_economic_buyer,
       coalesce(roles.champion_left, FALSE) AS champion_left,
       coalesce(roles.economic_buyer_left, FALSE) AS economic_buyer_left,
       champ.champion_last_reply_at
FROM state s
LEFT JOIN a USING (as_of, opportunity_id)
LEFT JOIN a30 USING (as_of, opportunity_id)
LEFT JOIN e30 USING (as_of, opportunity_id)
LEFT JOIN roles USING (as_of, opportunity_id)
LEFT JOIN champ USING (as_of, opportunity_id)
ORDER BY s.as_of, s.opportunity_id
"""

# One moment (today's states, as a weekly run scores them): every touch ``acts`` keeps is
# at or before it, so the running figures the ASOF joins pick at the moment are the
# deal's totals, and those 30 days earlier its totals up to then. Plain aggregates give
# them without the window functions over every touch (ties included: the RANGE frames
# above count every row of a timestamp, as a total does). The contacts engaged are the
# distinct contacts with an answer (one first answer each), and the outbound count at
# the last answer is the outbound touches up to its time. ``deal_states`` uses this for a
# single moment; a test holds it equal to STATES at every moment of a span.
_ONE = """
touch AS MATERIALIZED (
    SELECT opportunity_id,
           count(*) AS n,
           count(*) FILTER (NOT answered) AS outbound_n,
           count(*) FILTER (answered) AS replies_n,
           max(occurred_at) FILTER (answered) AS last_two_way_at,
           max(occurred_at) AS last_activity_at,
           count(DISTINCT contact_id) FILTER (answered) AS engaged_k,
           count(*) FILTER (answered AND occurred_at <= (SELECT max(as_of) FROM moments)
                                                        - INTERVAL 30 DAY) AS replies_30,
           count(*) FILTER (NOT answered AND occurred_at <= (SELECT max(as_of) FROM moments)
                                                            - INTERVAL 30 DAY) AS outbound_30
    FROM acts
    GROUP BY opportunity_id
),
at_answer AS (
    SELECT t.opportunity_id,
           count(*) FILTER (NOT x.answered AND x.occurred_at <= t.last_two_way_at)
               AS outbound_at_answer
    FROM touch t JOIN acts x USING (opportunity_id)
    WHERE t.last_two_way_at IS NOT NULL
    GROUP BY t.opportunity_id
),
a AS MATERIALIZED (
    SELECT s.as_of, s.opportunity_id,
           t.last_two_way_at, coalesce(t.replies_n, 0) AS replies_n,
           t.last_activity_at, coalesce(t.n, 0) AS touches_n,
           coalesce(t.outbound_n, 0) AS outbound_n,
           coalesce(t.outbound_n, 0) - coalesce(w.outbound_at_answer, 0) AS unanswered,
           coalesce(t.engaged_k, 0) AS engaged_contacts
    FROM state s
    LEFT JOIN touch t USING (opportunity_id)
    LEFT JOIN at_answer w USING (opportunity_id)
),
a30 AS (
    SELECT s.as_of, s.opportunity_id, t.replies_30 AS replies_n, t.outbound_30 AS outbound_n
    FROM state s LEFT JOIN touch t USING (opportunity_id)
),
"""
_START, _END = "touch0 AS (", "e30 AS ("
assert STATES.count(_START) == 1 and STATES.count(_END) == 1
STATES_ONE = STATES[: STATES.index(_START)] + _ONE.lstrip("\n") + STATES[STATES.index(_END) :]

# Only the states at given (as_of, opportunity_id) pairs: those of the table ``at_rows``
# (as_of, opportunity_id; no pair twice, each moment among $moments), which the caller
# creates first. A row's figures read its own deal's rows up to its moment alone, so they
# are those of STATES; the per-moment joins then cost the pairs, not every deal at every
# moment. A table, not a list parameter: over an unnested list DuckDB expects a few rows
# and plans the ASOF joins as nested loops (100k pairs on mid: 9 s in one join).
_STATE = """    SELECT m.as_of, h.* FROM moments m
    JOIN h ON h.changed_at <= m.as_of AND m.as_of < h.next_at
"""
_AT = """    SELECT m.as_of, h.* FROM at_rows m
    JOIN h ON h.opportunity_id = m.opportunity_id
          AND h.changed_at <= m.as_of AND m.as_of < h.next_at
"""
assert STATES.count(_STATE) == 1
STATES_AT = STATES.replace(_STATE, _AT)

# The same rows as STATES over many moments, in parts (``agents.features``,
# ``moments_per_query``): the history's running figures (``h``) and the activities'
# (``touch``, ``reply``) are kept once as temporary tables, then the moments are taken a
# few at a time. A row of ``h`` or ``touch`` reads only its own deal's rows at or before
# it, so it is the same whichever moments and deals are asked about; each part keeps
# only its own deals' touches up to its last moment, which is all its joins can pick.
# Over every moment at once, the states of a large company (some 18M rows of open deals)
# and every join's copy of them had to be held together.


def _between(start: str, end: str) -> str:
    assert STATES.count(start) == 1 and STATES.count(end) == 1
    return STATES[STATES.index(start) : STATES.index(end)]


def _last_cte(ctes: str) -> str:
    return ctes.rstrip().removesuffix(",")


_MOMENTS = _between("WITH moments AS (", "\nh0 AS (") + "\n"
_ACTS = _between("acts AS (", "reply AS MATERIALIZED (")
_ASKED = (
    "      AND opportunity_id IN (SELECT opportunity_id FROM state)  -- only deals asked about\n"
)
assert _ACTS.count(_ASKED) == 1
_ACTS = _ACTS.replace(_ASKED, "")
# $closed: the history's running figures, every row.
PART_H = "WITH" + _last_cte(_between("\nh0 AS (", "state AS MATERIALIZED (")) + "\nSELECT * FROM h"
# $moments (all of them): every completed touch's running figures, and the answers.
PART_TOUCH = (
    _MOMENTS
    + _ACTS
    + _last_cte(_between("touch0 AS (", "a AS MATERIALIZED ("))
    + "\nSELECT * FROM touch"
)
PART_REPLY = (
    _MOMENTS
    + _ACTS
    + _last_cte(_between("reply AS MATERIALIZED (", "-- Every completed touch"))
    + "\nSELECT * FROM reply"
)
# $moments (a few), $open_only, $won: the states at those moments from the kept tables
# ``part_h``, ``part_touch``, ``part_reply``.
_ASKED_ROWS = """ AS MATERIALIZED (
    SELECT * FROM part_{name}
    WHERE occurred_at <= (SELECT max(as_of) FROM moments)
      AND opportunity_id IN (SELECT opportunity_id FROM state)
),
"""
_STATE_PART = _between("state AS MATERIALIZED (", "acts AS (")
assert _STATE_PART.count("JOIN h ON") == 1
PART_STATES = (
    _MOMENTS
    + _STATE_PART.replace("JOIN h ON", "JOIN part_h h ON")
    + "reply"
    + _ASKED_ROWS.format(name="reply")
    + "touch"
    + _ASKED_ROWS.format(name="touch")
    + STATES[STATES.index("a AS MATERIALIZED (") :]
)
