"""Our own company: executives, regional VPs, managers, reps in seats that turn over,
and each rep's hidden traits (skill, forecast bias, private insight)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from revstack.data.generator._names import person_names
from revstack.data.generator._places import REGIONS
from revstack.data.generator._util import Clock, ids
from revstack.data.generator._zones import ZONES, Zones, make_zones

__all__ = ["Team", "make_team", "occupant_at"]

_CHAIN = 3  # occupants a seat can have over the history (the first, two successors)


@dataclass
class Team:
    users: pl.DataFrame  # crm.users rows (without source/import_id)
    traits: pl.DataFrame  # truth.rep_profiles: user_id, skill, commit_bias, insight
    seat_region: np.ndarray  # (seats,)
    occupant: np.ndarray  # (seats, _CHAIN) index into `reps`, -1 where nobody
    hire: np.ndarray  # (seats, _CHAIN) hire day, +inf where nobody
    leave: np.ndarray  # (seats, _CHAIN) leave day, +inf while employed
    rep_ids: np.ndarray  # user_id of each rep occupant
    rep_hire: np.ndarray  # hire day of each rep
    rep_leave: np.ndarray  # leave day of each rep, inf while employed
    zones: Zones  # the teams' time zones and holidays
    seat_zone: np.ndarray  # (seats,) zone index of the seat's team
    rep_seat: np.ndarray  # seat of each rep


def _apportion(n: int) -> np.ndarray:
    """Team regions in proportion to where the accounts are, every region once if possible."""
    names = list(REGIONS)
    w = np.array(list(REGIONS.values()))
    base = np.ones(len(names), int) if n >= len(names) else np.zeros(len(names), int)
    if n < len(names):
        base[:n] = 1
    rest = n - base.sum()
    quota = w * rest
    extra = np.floor(quota).astype(int)
    extra[np.argsort(-(quota - extra))[: rest - extra.sum()]] += 1
    return np.repeat(np.array(names), base + extra)


def make_team(rng: np.random.Generator, reps: int, clock: Clock) -> Team:
    n_teams = max(3, round(reps / 8))
    team_region = _apportion(n_teams)
    seat_team = np.arange(reps) % n_teams  # teams of reps/n_teams, within one
    seat_region = team_region[seat_team]
    now = clock.now
    # Seat k's first rep was hired before the history starts; reps stay about three
    # years on average, and a successor starts a few weeks before or after they go.
    hire = np.full((reps, _CHAIN), np.inf)
    leave = np.full((reps, _CHAIN), np.inf)
    hire[:, 0] = -rng.uniform(60, 5 * 365, reps)
    for k in range(_CHAIN):
        stay = np.maximum(hire[:, k], 0) + rng.exponential(7.0 * 365, reps)
        leave[:, k] = np.where(stay < now, stay, np.inf)
        if k + 1 < _CHAIN:
            hire[:, k + 1] = np.where(
                np.isfinite(leave[:, k]), leave[:, k] + rng.uniform(-20, 45, reps), np.inf
            )
            hire[:, k + 1] = np.where(hire[:, k + 1] < now, hire[:, k + 1], np.inf)
    exists = np.isfinite(hire)
    n_reps = int(exists.sum())
    occupant = np.full((reps, _CHAIN), -1)
    occupant[exists] = np.arange(n_reps)  # row-major: seat by seat
    seat_of_rep = np.nonzero(exists)[0]

    n_exec = 1 + len(set(team_region))
    n_users = 1 + n_exec + n_teams + n_reps  # + one RevOps admin
    first, last = person_names(rng, n_users)
    uid = ids("U", n_users, 5).to_numpy()
    vp_regions = [r for r in REGIONS if r in set(team_region)]
    vp_of = {r: uid[1 + i] for i, r in enumerate(vp_regions)}
    mgr = uid[n_exec : n_exec + n_teams]
    rep_ids = uid[n_exec + n_teams : n_exec + n_teams + n_reps]
    team_name = np.array([f"{r} {i + 1}" for i, r in enumerate(team_region)])  # one per team
    rep_hire = hire[exists]
    rep_leave = leave[exists]
    zones, team_zone = make_zones(clock, list(team_region))
    zone_name = np.array(zones.names)
    hq = ZONES[vp_regions[0]][0] if vp_regions else zones.names[0]
    users = pl.DataFrame(
        {
            "user_id": uid,
            "first": first,
            "last": last,
            "role": ["executive"] * n_exec + ["manager"] * n_teams + ["rep"] * n_reps + ["admin"],
            "manager_id": [None]
            + [uid[0]] * (n_exec - 1)
            + [vp_of[r] for r in team_region]
            + list(mgr[seat_team[seat_of_rep]])
            + [uid[0]],
            "team": [None] * n_exec
            + list(team_name)
            + list(team_name[seat_team[seat_of_rep]])
            + [None],
            "region": [None]
            + vp_regions
            + list(team_region)
            + list(seat_region[seat_of_rep])
            + [None],
            "is_active": np.concatenate(
                [np.ones(n_exec + n_teams, bool), ~np.isfinite(rep_leave), [True]]
            ),
            "time_zone": [hq]
            + [ZONES[r][0] for r in vp_regions]
            + list(zone_name[team_zone])
            + list(zone_name[team_zone[seat_team[seat_of_rep]]])
            + [hq],
            "hired": np.concatenate(
                [-rng.uniform(400, 3000, n_exec + n_teams), rep_hire, [-900.0]]
            ),
        }
    )
    users = users.with_columns(
        name=pl.concat_str("first", pl.lit(" "), "last"),
        email=pl.concat_str(
            pl.col("first").str.to_lowercase(),
            pl.lit("."),
            pl.col("last").str.to_lowercase(),
            pl.when(pl.int_range(pl.len()).over("first", "last") > 0)
            .then(pl.int_range(pl.len()).over("first", "last").cast(pl.String))
            .otherwise(pl.lit("")),
            pl.lit("@ourco.example"),
        ),
    )
    # Hidden traits. Sandbaggers commit below what they expect, happy ears above.
    style = rng.choice(3, size=n_reps, p=[0.3, 0.45, 0.25])
    bias = np.exp(
        np.where(
            style == 0,
            rng.normal(-0.22, 0.06, n_reps),
            np.where(style == 1, rng.normal(0.0, 0.04, n_reps), rng.normal(0.22, 0.07, n_reps)),
        )
    )
    traits = pl.DataFrame(
        {
            "user_id": rep_ids,
            "skill": rng.normal(0.0, 0.35, n_reps),
            "commit_bias": bias,
            "insight": rng.beta(5.0, 2.5, n_reps),
        }
    )
    return Team(
        users,
        traits,
        seat_region,
        occupant,
        hire,
        leave,
        rep_ids,
        rep_hire,
        rep_leave,
        zones,
        team_zone[seat_team],
        seat_of_rep,
    )


def occupant_at(team: Team, seat: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Index of the rep sitting in `seat` at day `t` (the earlier one while seats overlap)."""
    h = team.hire[seat]
    k = np.maximum((h <= t[:, None]).sum(axis=1) - 1, 0)
    # Overlap: the leaver keeps the seat until their last day.
    prev = np.maximum(k - 1, 0)
    still = (k > 0) & (team.leave[seat, prev] > t)
    k = np.where(still, prev, k)
    return team.occupant[seat, k]
