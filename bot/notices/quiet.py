"""Quiet hours: no push notice at night (``NOTIFY_QUIET_HOURS``, e.g. ``21-08``)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

_SPEC = re.compile(r"^\s*(\d{1,2})(?::(\d{2}))?\s*-\s*(\d{1,2})(?::(\d{2}))?\s*$")


@dataclass(frozen=True)
class QuietHours:
    """A daily window in local time; ``start > end`` wraps past midnight. None: never quiet."""

    start: dt.time | None
    end: dt.time | None
    zone: ZoneInfo

    @classmethod
    def parse(cls, spec: str, zone: str = "Asia/Bangkok") -> QuietHours:
        """``"21-08"`` or ``"21:30-07:45"``; an empty string disables quiet hours."""
        tz = ZoneInfo(zone)
        if not spec.strip():
            return cls(None, None, tz)
        m = _SPEC.match(spec)
        if not m:
            raise ValueError(f"quiet hours must look like 21-08 or 21:30-07:45, not {spec!r}")
        h1, m1, h2, m2 = (int(x) if x else 0 for x in m.groups())
        if not (0 <= h1 <= 23 and 0 <= h2 <= 23 and m1 < 60 and m2 < 60):
            raise ValueError(f"quiet hours out of range: {spec!r}")
        start, end = dt.time(h1, m1), dt.time(h2, m2)
        if start == end:
            raise ValueError(f"quiet hours start and end are the same: {spec!r}")
        return cls(start, end, tz)

    def active(self, now: dt.datetime) -> bool:
        """Is ``now`` (aware) inside the quiet window?"""
        if self.start is None or self.end is None:
            return False
        t = now.astimezone(self.zone).time()
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def local_day_start(self, now: dt.datetime) -> dt.datetime:
        """Midnight of ``now``'s local day, in UTC (the daily cap counts local days)."""
        local = now.astimezone(self.zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight.astimezone(dt.UTC)
