"""Time zones and public holidays: our teams work in their own zone (a region holds
several), so an activity's local working hour becomes a UTC timestamp that differs by
team, and a holiday empties a working day the way a weekend does."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from revstack.data.generator._util import Clock

__all__ = ["Zones", "ZONES", "make_zones"]

# Where a region's teams sit, in the order teams are given them (a region's first team
# sits in its first zone, the next in the second, and so on round).
ZONES: dict[str, list[str]] = {
    "NA": ["America/New_York", "America/Chicago", "America/Los_Angeles", "America/Denver"],
    "EMEA": ["Europe/London", "Europe/Berlin", "Europe/Paris", "Europe/Stockholm"],
    "APAC": ["Australia/Sydney", "Asia/Singapore", "Asia/Tokyo", "Asia/Kolkata"],
    "LATAM": ["America/Sao_Paulo", "America/Mexico_City", "America/Santiago"],
}


def _holidays(region: str, year: int) -> list[dt.date]:
    """A few public holidays a region's offices close for (fixed and US floating ones)."""
    days = [dt.date(year, 1, 1), dt.date(year, 12, 25)]
    if region == "NA":
        sep1 = dt.date(year, 9, 1)
        labor = sep1 + dt.timedelta(days=(7 - sep1.weekday()) % 7)  # first Monday
        nov1 = dt.date(year, 11, 1)
        thanks = nov1 + dt.timedelta(days=(3 - nov1.weekday()) % 7 + 21)  # fourth Thursday
        days += [dt.date(year, 7, 4), labor, thanks]
    if region in ("EMEA", "LATAM"):
        days.append(dt.date(year, 5, 1))
    if region in ("EMEA", "APAC"):
        days.append(dt.date(year, 12, 26))
    return days


@dataclass(frozen=True)
class Zones:
    names: list[str]  # IANA names
    offset: np.ndarray  # (zones, days + 2) hours ahead of UTC on each day of the history
    holiday: np.ndarray  # (zones, days + 2) the office is closed

    def to_utc(self, days: np.ndarray, zone: np.ndarray) -> np.ndarray:
        """Local moments (float days) in each row's zone -> UTC moments."""
        d = np.asarray(days, dtype=float)
        idx = np.clip(np.floor(np.nan_to_num(d, posinf=0, neginf=0)), 0, self.offset.shape[1] - 1)
        return d - self.offset[zone, idx.astype(np.int64)] / 24

    def closed(self, zone: np.ndarray, day: np.ndarray) -> np.ndarray:
        idx = np.clip(day, 0, self.holiday.shape[1] - 1).astype(np.int64)
        return self.holiday[zone, idx]


def make_zones(clock: Clock, regions: list[str]) -> tuple[Zones, np.ndarray]:
    """(the zones, each team's zone index) for teams in `regions`, in team order."""
    names: list[str] = []
    team_zone = np.zeros(len(regions), dtype=np.int64)
    seen: dict[str, int] = {}
    for i, r in enumerate(regions):
        k = seen.get(r, 0)
        seen[r] = k + 1
        name = ZONES[r][k % len(ZONES[r])]
        if name not in names:
            names.append(name)
        team_zone[i] = names.index(name)
    n_days = int(np.ceil(clock.now)) + 2
    first = clock.start.date()
    offset = np.zeros((len(names), n_days))
    holiday = np.zeros((len(names), n_days), dtype=bool)
    region_of = {z: r for r, zs in ZONES.items() for z in zs}
    for j, name in enumerate(names):
        tz = ZoneInfo(name)
        for k in range(n_days):  # a few thousand look-ups: the exact offset, summer time and all
            noon = dt.datetime.combine(first + dt.timedelta(days=k), dt.time(12), tz)
            offset[j, k] = noon.utcoffset().total_seconds() / 3600  # type: ignore[union-attr]
        years = range(first.year, first.year + n_days // 365 + 2)
        for h in (h for y in years for h in _holidays(region_of[name], y)):
            k = (h - first).days
            if 0 <= k < n_days:
                holiday[j, k] = True
    return Zones(names, offset, holiday), team_zone
