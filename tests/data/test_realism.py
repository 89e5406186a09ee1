"""The realism report (issue #17) and the properties the generator plants so that no single
field or rule gives a real CRM's hard questions away (small company, seed 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from revstack.data.generator import RATES, REALISM_COLUMNS, real_figures, realism
from revstack.data.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"


def test_the_report_measures_every_tell_with_a_target(small_company: Warehouse) -> None:
    table = realism(small_company)
    assert table.columns == REALISM_COLUMNS
    assert {"stage path", "phantoms", "working week", "duplicates", "forecast"} <= set(
        table["tell"]
    )
    assert table["figure"].null_count() == 0
    shares = table.filter(~table["measure"].str.contains(r"\((days|count)\)"))
    assert ((shares["figure"] >= 0) & (shares["figure"] <= 1)).all()
    # a row with a band says pass or fail, one without says neither
    banded = table["target"] != ""
    assert (table["ok"].is_null() == ~banded).all()


@pytest.mark.skipif(not SHARED.is_dir(), reason="no public data in ../shared/data")
def test_real_data_gives_its_figures() -> None:
    real = real_figures(SHARED)
    # dedupe_orgs: hand-labelled organisations, where an exact phone match is often wrong
    phone = real["account pairs with the same phone that are different companies"]
    assert 0.10 < phone < 0.25


@pytest.fixture(scope="module")
def table(small_company: Warehouse) -> dict[str, float]:
    t = realism(small_company)
    return dict(zip(t["measure"], t["figure"], strict=True))


def test_people_work_a_working_week(table: dict[str, float]) -> None:
    # activities: weekdays, office hours, no day swallowing the weekend
    assert table["completed activities on a weekend"] < 0.08
    assert table["busiest weekday's share of completed activities"] < 0.26
    assert table["completed activities before 07:00 or from 20:00, owner's local time"] < 0.10
    assert table["stage changes on a weekend"] < 0.08
    # forecast calls at any working hour, some late, some never made
    assert table["forecast submissions at the commonest time of day"] < 0.20
    assert (
        0.02 <= table["rep-periods without a submission (between a rep's first and last)"] <= 0.20
    )


def test_the_stage_path_does_not_give_the_outcome_away(table: dict[str, float]) -> None:
    assert 0.05 <= table["deals created past prospecting"] <= 0.60
    assert 0.02 <= table["deals that moved back a stage"] <= 0.30
    assert 0.03 <= table["win rate of closed deals that never reached negotiation"] <= 0.30
    assert 0.03 <= table["win rate of closed deals never in commit"] <= 0.40
    assert table["win rate of closed deals with 120+ days in one open stage"] >= 0.03
    assert table["wins within 7 days of creation (share of wins)"] > 0
    assert table["close-date changes on open deals that pull the date in"] >= 0.10
    assert table["closed deals whose CRM close date is the true outcome date"] <= 0.95


def test_a_stale_close_date_does_not_mark_a_phantom(small_company: Warehouse) -> None:
    with small_company.connect() as con:
        stale, genuine, phantoms = con.execute(
            """SELECT count(*) FILTER (WHERE stale), count(*) FILTER (WHERE stale AND NOT is_phantom),
                      count(*) FILTER (WHERE is_phantom)
               FROM (SELECT t.is_phantom, coalesce(o.close_date < DATE '2026-09-24', FALSE) AS stale
                     FROM crm.opportunities o JOIN truth.deal_outcomes t USING (opportunity_id)
                     WHERE NOT o.is_closed)"""
        ).fetchone()
    assert phantoms > 0 and stale > 0
    assert genuine / stale >= 0.5  # the rule 'close date over a week past' is wrong half the time


def test_duplicates_carry_traps(table: dict[str, float], small_company: Warehouse) -> None:
    # subsidiaries on the group's website and switchboard are other companies
    assert table["account pairs sharing a website domain that are different companies"] >= 0.03
    assert table["account pairs with the same phone that are different companies"] >= 0.03
    assert 0.10 <= table["contact records that duplicate another"] <= 0.30
    with small_company.connect() as con:
        linked, own = con.execute(
            """SELECT count(*), count(*) FILTER (WHERE e.true_entity_id <> p.true_entity_id)
               FROM crm.accounts a JOIN truth.entities e ON e.record_id = a.account_id
               JOIN truth.entities p ON p.record_id = a.parent_account_id
               WHERE a.parent_account_id IS NOT NULL"""
        ).fetchone()
    assert linked >= 10 and own == linked  # a subsidiary is its own company, not a duplicate


def test_segments_teams_and_renewals_differ(table: dict[str, float]) -> None:
    assert table["spread of win rates across segments (points)"] >= 0.05
    assert table["spread of median cycle across teams (days)"] >= 15
    assert 0.70 <= table["renewal win rate"] <= 0.95


_LOCAL = """SELECT u.time_zone AS tz, a.occurred_at AS utc,
                   timezone(u.time_zone, a.occurred_at AT TIME ZONE 'UTC') AS lt
            FROM crm.activities a JOIN crm.users u ON u.user_id = a.owner_id
            WHERE a.status = 'completed'"""


def test_owners_work_their_own_local_day(table: dict[str, float], small_company: Warehouse) -> None:
    with small_company.connect() as con:
        zones = con.execute(
            f"""SELECT tz, count(*), median(hour(lt) + minute(lt) / 60),
                       avg((hour(utc) - hour(lt) + 24) % 24)
                FROM ({_LOCAL}) GROUP BY ALL ORDER BY 2 DESC"""
        ).fetchall()
        nameless = con.execute("SELECT count(*) FROM crm.users WHERE time_zone IS NULL").fetchone()
    assert len(zones) >= 3 and nameless == (0,)
    # every team's working day peaks around midday on its own clock ...
    assert all(11 <= local <= 15 for _, _, local, _ in zones)
    # ... which is a different hour in UTC for each of them
    shifts = sorted(shift for *_, shift in zones)
    assert shifts[-1] - shifts[0] >= 5
    assert table["completed activities before 07:00 or from 20:00 UTC"] >= 0.10
    # the working week still holds in UTC as stored, and on each owner's own clock
    assert table["completed activities on a weekend"] < 0.08
    assert table["completed activities on a weekend, owner's local time"] < 0.08
    assert table["busiest weekday's share of completed activities"] < 0.26


def test_holidays_empty_the_office(table: dict[str, float]) -> None:
    share = "activity on 25 December and 1 January against an average weekday (local)"
    assert table[share] < 0.30


def test_some_leavers_are_never_marked_and_go_silent(small_company: Warehouse) -> None:
    with small_company.connect() as con:
        silent, marked, shows, spoke_after = con.execute(
            """WITH l AS (SELECT contact_id, changed_at, in_crm FROM truth.contact_changes
                          WHERE field = 'is_active')
               SELECT count(*) FILTER (WHERE NOT in_crm), count(*) FILTER (WHERE in_crm),
                      count(*) FILTER (WHERE NOT in_crm AND c.is_active AND NOT c.email_bounced),
                      count(*) FILTER (WHERE NOT in_crm AND EXISTS (
                          SELECT 1 FROM crm.activities a WHERE a.contact_id = l.contact_id
                          AND a.status = 'completed' AND a.direction IN ('inbound', 'two_way')
                          AND a.occurred_at > l.changed_at + INTERVAL 1 DAY))
               FROM l JOIN crm.contacts c USING (contact_id)"""
        ).fetchone()
    assert 0.05 <= silent / (silent + marked) <= 0.5
    assert shows == silent  # the CRM still has them active and reachable
    assert spoke_after == 0  # they simply stop answering


def test_stayers_change_and_the_crm_lags(small_company: Warehouse) -> None:
    with small_company.connect() as con:
        rows = con.execute(
            """SELECT x.field, x.in_crm, count(*),
                      count(*) FILTER (WHERE CASE x.field WHEN 'title' THEN c.title
                                       WHEN 'email' THEN c.email ELSE c.phone END
                                       = CASE WHEN x.in_crm THEN x.new_value ELSE x.old_value END),
                      count(*) FILTER (WHERE x.old_value = x.new_value)
               FROM truth.contact_changes x JOIN crm.contacts c USING (contact_id)
               WHERE x.field <> 'is_active' GROUP BY ALL"""
        ).fetchall()
    seen = {(field, in_crm): (n, agrees, same) for field, in_crm, n, agrees, same in rows}
    for field in ("title", "email", "phone"):
        for in_crm in (True, False):
            n, agrees, same = seen[(field, in_crm)]
            # the CRM shows the new value when it caught the change, else the old one
            # (unless the field was left blank); a change really changes something
            assert n >= 5 and agrees >= 0.8 * n and same == 0


def test_optional_fields_are_blank_at_real_rates(small_company: Warehouse) -> None:
    with small_company.connect() as con:
        (n_opp, no_source, undated, undated_elsewhere, undated_unseen) = con.execute(
            """SELECT count(*), count(*) FILTER (WHERE lead_source IS NULL),
                      count(*) FILTER (WHERE created_at IS NULL),
                      count(*) FILTER (WHERE created_at IS NULL
                                       AND (is_closed OR stage <> 'prospecting')),
                      count(*) FILTER (WHERE created_at IS NULL AND opportunity_id NOT IN
                                       (SELECT opportunity_id FROM crm.opportunity_history))
               FROM crm.opportunities"""
        ).fetchone()
        n_acc, no_revenue = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE annual_revenue IS NULL) FROM crm.accounts"
        ).fetchone()
    for blank, n, p in (
        (no_source, n_opp, RATES.sparse["opportunities"]["lead_source"]),
        (no_revenue, n_acc, RATES.sparse["accounts"]["annual_revenue"]),
    ):
        assert abs(blank / n - p) <= 4 * (p * (1 - p) / n) ** 0.5
    # only deals not yet engaged lack a created date, and their history still dates them
    assert undated > 0 and undated_elsewhere == 0 and undated_unseen == 0
