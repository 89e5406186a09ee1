"""The realism report: how easy a generated company is, tell by tell (issue #17).

Each row measures one tell a real CRM does not give away, on the warehouse as written
(crm.* beside truth.*), with the band a realistic company falls in and, where the public
data in ``../shared/data`` can say it, the same figure on real data. A row's ``ok`` is
None where there is no band (a figure shown for context).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from revstack.data.warehouse import Warehouse, scalar

__all__ = ["realism", "real_figures", "REALISM_COLUMNS"]

REALISM_COLUMNS = ["tell", "measure", "figure", "target", "real", "ok"]
_STAGE_ORDER = (
    "CASE stage WHEN 'prospecting' THEN 0 WHEN 'qualification' THEN 1 WHEN 'discovery' THEN 2 "
    "WHEN 'proposal' THEN 3 WHEN 'negotiation' THEN 4 WHEN 'closed_won' THEN 5 ELSE 6 END"
)
# Completed activities with their owner's wall clock (users.time_zone; timestamps are UTC).
_LOCAL = """SELECT timezone(u.time_zone, a.occurred_at AT TIME ZONE 'UTC') AS lt
            FROM crm.activities a JOIN crm.users u ON u.user_id = a.owner_id
            WHERE a.status = 'completed' AND u.time_zone IS NOT NULL"""
_DOMAIN = (
    "nullif(regexp_replace(regexp_replace(lower(trim(website)), '^[a-z]+://', ''), "
    "'^www\\.|/.*$', '', 'g'), '')"
)

# (tell, measure, SQL giving one number, low, high); None for an open end.
_MEASURES: list[tuple[str, str, str, float | None, float | None]] = [
    (
        "stage path",
        "deals created past prospecting",
        """WITH f AS (SELECT opportunity_id, stage FROM crm.opportunity_history
                      QUALIFY row_number() OVER (PARTITION BY opportunity_id
                                                 ORDER BY changed_at, history_id) = 1)
           SELECT avg((stage <> 'prospecting')::INT) FROM f""",
        0.05,
        0.60,
    ),
    (
        "stage path",
        "deals that moved back a stage",
        f"""WITH m AS (SELECT opportunity_id, s, lag(s) OVER (PARTITION BY opportunity_id
                   ORDER BY changed_at, history_id) AS p
                 FROM (SELECT *, {_STAGE_ORDER} AS s FROM crm.opportunity_history))
           SELECT count(DISTINCT opportunity_id) FILTER (WHERE s < p AND s <= 4)
                  / (SELECT count(*) FROM crm.opportunities) FROM m""",
        0.02,
        0.30,
    ),
    (
        "stage path",
        "win rate of closed deals that never reached negotiation",
        """WITH r AS (SELECT opportunity_id, bool_or(stage = 'negotiation') AS nego
                      FROM crm.opportunity_history GROUP BY ALL)
           SELECT avg(is_won::INT) FROM crm.opportunities JOIN r USING (opportunity_id)
           WHERE is_closed AND NOT nego""",
        0.03,
        0.30,
    ),
    (
        "stage path",
        "win rate of closed deals never in commit",
        """WITH r AS (SELECT opportunity_id,
                             bool_or(forecast_category = 'commit' AND stage NOT LIKE 'closed%')
                             AS commit FROM crm.opportunity_history GROUP BY ALL)
           SELECT avg(is_won::INT) FROM crm.opportunities JOIN r USING (opportunity_id)
           WHERE is_closed AND NOT commit""",
        0.03,
        0.40,
    ),
    (
        "stage path",
        "win rate of closed deals with 120+ days in one open stage",
        """WITH s AS (SELECT opportunity_id, stage, changed_at, lead(changed_at) OVER w AS nxt,
                             stage IS DISTINCT FROM lag(stage) OVER w AS moved
                      FROM crm.opportunity_history
                      WINDOW w AS (PARTITION BY opportunity_id ORDER BY changed_at, history_id)),
           runs AS (SELECT *, sum(moved::INT) OVER (PARTITION BY opportunity_id
                                                    ORDER BY changed_at) AS run FROM s),
           d AS (SELECT opportunity_id, max(date_diff('day', first_at, last_at)) AS longest
                 FROM (SELECT opportunity_id, run, any_value(stage) AS stage,
                              min(changed_at) AS first_at, max(coalesce(nxt, changed_at)) AS last_at
                       FROM runs GROUP BY ALL) WHERE stage NOT LIKE 'closed%' GROUP BY ALL)
           SELECT avg(is_won::INT) FROM crm.opportunities JOIN d USING (opportunity_id)
           WHERE is_closed AND longest >= 120""",
        0.03,
        None,
    ),
    (
        "stage path",
        "wins within 7 days of creation (share of wins)",
        """SELECT avg((t.outcome_date - o.created_at::DATE <= 7)::INT)
           FROM crm.opportunities o JOIN truth.deal_outcomes t USING (opportunity_id)
           WHERE t.outcome = 'won'""",
        0.01,
        None,
    ),
    (
        "stage path",
        "close-date changes on open deals that pull the date in",
        """WITH c AS (SELECT stage, close_date, lag(close_date) OVER (PARTITION BY opportunity_id
                        ORDER BY changed_at, history_id) AS before FROM crm.opportunity_history)
           SELECT avg((close_date < before)::INT) FROM c
           WHERE stage NOT LIKE 'closed%' AND close_date <> before""",
        0.10,
        None,
    ),
    (
        "stage path",
        "closed deals whose CRM close date is the true outcome date",
        """SELECT avg((o.close_date = t.outcome_date)::INT) FROM crm.opportunities o
           JOIN truth.deal_outcomes t USING (opportunity_id) WHERE o.is_closed""",
        None,
        0.95,
    ),
    (
        "phantoms",
        "phantoms with a close date over 7 days past",
        """SELECT avg((o.close_date < g.as_of::DATE - 7)::INT) FROM crm.opportunities o
           JOIN truth.deal_outcomes t USING (opportunity_id), truth.generation g
           WHERE t.is_phantom""",
        None,
        None,
    ),
    (
        "phantoms",
        "genuine open deals with a close date over 7 days past",
        """SELECT avg(coalesce(o.close_date < g.as_of::DATE - 7, FALSE)::INT)
           FROM crm.opportunities o JOIN truth.deal_outcomes t USING (opportunity_id),
                truth.generation g WHERE NOT o.is_closed AND NOT t.is_phantom""",
        0.10,
        None,
    ),
    (
        "phantoms",
        "precision of 'close date over 7 days past' as a phantom rule",
        """SELECT avg(t.is_phantom::INT) FROM crm.opportunities o
           JOIN truth.deal_outcomes t USING (opportunity_id), truth.generation g
           WHERE NOT o.is_closed AND o.close_date < g.as_of::DATE - 7""",
        None,
        0.50,
    ),
    (
        "working week",
        "completed activities on a weekend",
        """SELECT avg((dayofweek(occurred_at) IN (0, 6))::INT) FROM crm.activities
           WHERE status = 'completed'""",
        None,
        0.08,
    ),
    (
        "working week",
        "busiest weekday's share of completed activities",
        """SELECT max(n) / sum(n) FROM (SELECT dayofweek(occurred_at) AS d, count(*) AS n
           FROM crm.activities WHERE status = 'completed' GROUP BY ALL)""",
        None,
        0.26,
    ),
    (
        "working week",
        "completed activities on a weekend, owner's local time",
        f"SELECT avg((dayofweek(lt) IN (0, 6))::INT) FROM ({_LOCAL})",
        None,
        0.08,
    ),
    (
        "working week",
        "completed activities before 07:00 or from 20:00, owner's local time",
        f"SELECT avg((hour(lt) < 7 OR hour(lt) >= 20)::INT) FROM ({_LOCAL})",
        None,
        0.10,
    ),
    (
        "working week",
        "completed activities before 07:00 or from 20:00 UTC",
        """SELECT avg((hour(occurred_at) < 7 OR hour(occurred_at) >= 20)::INT)
           FROM crm.activities WHERE status = 'completed'""",
        0.10,
        None,
    ),
    (
        "working week",
        "time zones our users work in (count)",
        "SELECT count(DISTINCT time_zone) FROM crm.users",
        3.0,
        None,
    ),
    (
        "working week",
        "activity on 25 December and 1 January against an average weekday (local)",
        f"""WITH d AS (SELECT lt::DATE AS day, count(*) AS n FROM ({_LOCAL}) GROUP BY ALL)
            SELECT avg(n) FILTER (WHERE ((month(day) = 12 AND day(day) = 25)
                                         OR (month(day) = 1 AND day(day) = 1))
                                        AND dayofweek(day) BETWEEN 1 AND 5)
                   / avg(n) FILTER (WHERE dayofweek(day) BETWEEN 1 AND 5) FROM d""",
        None,
        0.30,
    ),
    (
        "working week",
        "stage changes on a weekend",
        """WITH m AS (SELECT changed_at, stage IS DISTINCT FROM lag(stage) OVER (
                        PARTITION BY opportunity_id ORDER BY changed_at, history_id) AS moved
                      FROM crm.opportunity_history)
           SELECT avg((dayofweek(changed_at) IN (0, 6))::INT) FROM m WHERE moved""",
        None,
        0.08,
    ),
    (
        "working week",
        "forecast submissions at the commonest time of day",
        """SELECT max(n) / sum(n) FROM (SELECT strftime(submitted_at, '%H:%M') AS t,
           count(*) AS n FROM crm.forecast_submissions GROUP BY ALL)""",
        None,
        0.20,
    ),
    (
        "working week",
        "rep-periods without a submission (between a rep's first and last)",
        """WITH p AS (SELECT DISTINCT period_type, period_start FROM crm.forecast_submissions),
           r AS (SELECT user_id, period_type, min(period_start) AS a, max(period_start) AS b
                 FROM crm.forecast_submissions GROUP BY ALL),
           s AS (SELECT DISTINCT user_id, period_type, period_start FROM crm.forecast_submissions)
           SELECT 1 - (SELECT count(*) FROM s) / count(*) FROM r JOIN p
           ON p.period_type = r.period_type AND p.period_start BETWEEN r.a AND r.b""",
        0.02,
        0.20,
    ),
    (
        "duplicates",
        "account pairs sharing a website domain that are different companies",
        f"""WITH a AS (SELECT {_DOMAIN} AS d, e.true_entity_id AS e FROM crm.accounts
                       JOIN truth.entities e ON e.object_type = 'accounts'
                       AND e.record_id = account_id),
           g AS (SELECT d, e, count(*) AS n FROM a WHERE d IS NOT NULL GROUP BY ALL),
           t AS (SELECT d, sum(n) AS n, sum(n * (n - 1) / 2) AS same FROM g GROUP BY ALL)
           SELECT 1 - sum(same) / nullif(sum(n * (n - 1) / 2), 0) FROM t""",
        0.03,
        None,
    ),
    (
        "duplicates",
        "duplicate account pairs that share a website domain",
        f"""WITH a AS (SELECT account_id, {_DOMAIN} AS d, e.true_entity_id AS e FROM crm.accounts
                       JOIN truth.entities e ON e.object_type = 'accounts'
                       AND e.record_id = account_id)
           SELECT avg(coalesce(x.d = y.d, FALSE)::INT) FROM a x JOIN a y
           ON x.e = y.e AND x.account_id < y.account_id""",
        None,
        None,
    ),
    (
        "duplicates",
        "accounts with a parent account",
        "SELECT avg((parent_account_id IS NOT NULL)::INT) FROM crm.accounts",
        0.01,
        None,
    ),
    (
        "duplicates",
        "account pairs with the same phone that are different companies",
        """WITH a AS (SELECT right(regexp_replace(phone, '[^0-9]', '', 'g'), 8) AS p,
                             e.true_entity_id AS e FROM crm.accounts
                      JOIN truth.entities e ON e.object_type = 'accounts'
                      AND e.record_id = account_id WHERE phone IS NOT NULL),
           g AS (SELECT p, e, count(*) AS n FROM a GROUP BY ALL),
           t AS (SELECT p, sum(n) AS n, sum(n * (n - 1) / 2) AS same FROM g GROUP BY ALL)
           SELECT 1 - sum(same) / nullif(sum(n * (n - 1) / 2), 0) FROM t""",
        0.03,
        None,
    ),
    (
        "duplicates",
        "contact records that duplicate another",
        """SELECT avg((record_id <> true_entity_id)::INT) FROM truth.entities
           WHERE object_type = 'contacts'""",
        0.10,
        0.30,
    ),
    (
        "decay",
        "departed champions the CRM marks inactive or bounced",
        """SELECT avg((NOT c.is_active OR c.email_bounced)::INT)
           FROM (SELECT DISTINCT contact_id FROM truth.champion_departures) d
           JOIN crm.contacts c USING (contact_id)""",
        None,
        0.95,
    ),
    (
        "decay",
        "contacts who left that the CRM never marks inactive or bounced",
        """SELECT avg((NOT in_crm)::INT) FROM truth.contact_changes
           WHERE field = 'is_active'""",
        0.05,
        0.50,
    ),
    (
        "decay",
        "stayers' changed titles, emails and phones the CRM still lacks",
        """SELECT avg((NOT in_crm)::INT) FROM truth.contact_changes
           WHERE field <> 'is_active'""",
        0.10,
        0.90,
    ),
    (
        "decay",
        "contacts with a stale value the CRM shows",
        """SELECT count(DISTINCT contact_id) FILTER (WHERE NOT in_crm)
                  / (SELECT count(*) FROM crm.contacts) FROM truth.contact_changes""",
        None,
        None,
    ),
    (
        "uniformity",
        "spread of win rates across segments (points)",
        """WITH s AS (SELECT CASE WHEN a.employees < 200 THEN 0 WHEN a.employees < 2000 THEN 1
                             ELSE 2 END AS seg, avg(o.is_won::INT) AS w
                      FROM crm.opportunities o JOIN crm.accounts a USING (account_id)
                      WHERE o.is_closed AND a.employees IS NOT NULL GROUP BY ALL)
           SELECT max(w) - min(w) FROM s""",
        0.05,
        None,
    ),
    (
        "uniformity",
        "spread of median cycle across teams (days)",
        """WITH c AS (SELECT u.team, median(t.outcome_date - o.created_at::DATE) AS m
                      FROM crm.opportunities o JOIN truth.deal_outcomes t USING (opportunity_id)
                      JOIN crm.users u ON u.user_id = o.owner_id
                      WHERE t.outcome <> 'open' AND u.team IS NOT NULL GROUP BY ALL)
           SELECT max(m) - min(m) FROM c""",
        15.0,
        None,
    ),
    (
        "uniformity",
        "renewal win rate",
        """SELECT avg(is_won::INT) FROM crm.opportunities
           WHERE is_closed AND opportunity_type = 'renewal'""",
        0.70,
        0.95,
    ),
    (
        "blanks",
        "deals with no lead source",
        "SELECT avg((lead_source IS NULL)::INT) FROM crm.opportunities",
        0.01,
        0.25,
    ),
    (
        "blanks",
        "accounts with no annual revenue",
        "SELECT avg((annual_revenue IS NULL)::INT) FROM crm.accounts",
        0.05,
        0.50,
    ),
    (
        "blanks",
        "deals with no created date",
        "SELECT avg((created_at IS NULL)::INT) FROM crm.opportunities",
        None,
        0.10,
    ),
    (
        "forecast",
        "quarters whose company day-1 commit lands within 5% of the outcome",
        """WITH f AS (SELECT period_start, user_id, commit_amount,
                             row_number() OVER (PARTITION BY user_id, period_start
                                                ORDER BY submitted_at) AS k
                      FROM crm.forecast_submissions WHERE period_type = 'quarter'),
           c AS (SELECT period_start, sum(commit_amount) AS c FROM f WHERE k = 1 GROUP BY ALL),
           r AS (SELECT period_start, sum(won_amount) AS r FROM truth.revenue
                 WHERE period_type = 'quarter' GROUP BY ALL)
           SELECT avg((abs(c - r) / r <= 0.05)::INT) FROM c JOIN r USING (period_start),
                  truth.generation g
           WHERE period_start + INTERVAL 3 MONTH <= g.as_of AND period_start >
                 (SELECT min(period_start) FROM c)""",
        0.10,
        0.40,
    ),
]


def figure_text(x: float | None, measure: str) -> str:
    """A realism figure as the table prints it: points, days or a share, by its measure."""
    if x is None:
        return ""
    if "(points)" in measure:
        return f"{100 * x:.1f} pts"
    if "(days)" in measure:
        return f"{x:.0f} days"
    if "(count)" in measure:
        return f"{x:.0f}"
    return f"{x:.1%}"


def _target(low: float | None, high: float | None, measure: str) -> str:
    def fmt(x: float) -> str:
        if "(points)" in measure:
            return f"{100 * x:g} pts"
        if "(days)" in measure:
            return f"{x:g} days"
        if "(count)" in measure:
            return f"{x:g}"
        return f"{x:.0%}"

    if low is not None and high is not None:
        return f"{fmt(low)}-{fmt(high)}"
    if low is not None:
        return f">= {fmt(low)}"
    if high is not None:
        return f"<= {fmt(high)}"
    return ""


def real_figures(shared: Path) -> dict[str, float]:
    """The figures public real data can give, by measure (empty where a file is missing)."""
    out: dict[str, float] = {}
    orgs = shared / "dedupe_orgs" / "csv_example_input_with_true_ids.csv"
    if orgs.exists():
        f = pl.read_csv(orgs, infer_schema=False).select(
            e=pl.col("True Id"), p=pl.col("Phone").str.replace_all(r"[^0-9]", "")
        )
        g = f.filter(pl.col("p").str.len_chars() >= 7).group_by("p", "e").len()
        pairs = (
            g.group_by("p")
            .agg(n=pl.col("len").sum(), same=(pl.col("len") * (pl.col("len") - 1) / 2).sum())
            .select(all=(pl.col("n") * (pl.col("n") - 1) / 2).sum(), same=pl.col("same").sum())
        )
        total, same = (float(x) for x in pairs.row(0))
        if total:
            out["account pairs with the same phone that are different companies"] = 1 - same / total
    sf = shared / "salesforce_sample"
    for name, col, measure in (
        ("Opportunity", "LeadSource", "deals with no lead source"),
        ("Account", "AnnualRevenue", "accounts with no annual revenue"),
    ):
        if (sf / f"{name}.csv").exists():
            t = pl.read_csv(sf / f"{name}.csv", infer_schema=False)
            empty = pl.col(col).is_null() | (pl.col(col).str.strip_chars() == "")
            out[measure] = float(t.select(empty.mean()).item())
    maven = shared / "maven_crm" / "sales_pipeline.csv"
    if maven.exists():
        m = pl.read_csv(maven, try_parse_dates=True)
        closed = m.filter(pl.col("close_date").is_not_null())
        weekend = (pl.col("close_date").dt.weekday() >= 6).mean()
        out["stage changes on a weekend"] = float(closed.select(weekend).item())
        won = closed.filter(pl.col("deal_stage") == "Won")
        fast = ((pl.col("close_date") - pl.col("engage_date")).dt.total_days() <= 7).mean()
        out["wins within 7 days of creation (share of wins)"] = float(won.select(fast).item())
        out["deals with no created date"] = float(
            m.select(pl.col("engage_date").is_null().mean()).item()
        )
    return out


def realism(wh: Warehouse, shared: Path | None = None) -> pl.DataFrame:
    """Every tell measured on ``wh`` (a generated company: it reads truth.*), with its
    target band, the real data's figure where ``shared`` holds one, and pass/fail."""
    real = real_figures(shared) if shared is not None else {}
    rows: list[dict[str, Any]] = []
    with wh.connect() as con:
        for tell, measure, sql, low, high in _MEASURES:
            value = scalar(con, sql)
            fig = None if value is None else float(value)
            ok = None
            if fig is not None and (low is not None or high is not None):
                ok = (low is None or fig >= low) and (high is None or fig <= high)
            rows.append(
                {
                    "tell": tell,
                    "measure": measure,
                    "figure": fig,
                    "target": _target(low, high, measure),
                    "real": real.get(measure),
                    "ok": ok,
                }
            )
    return pl.DataFrame(rows, schema_overrides={"figure": pl.Float64, "real": pl.Float64})
