"""Work a tablet did while the laptop was unreachable, arriving late: the times it may carry.

A registration or a scan queued on a tablet keeps the time it was made. The server accepts that
time only within bounds: never ahead of its own clock (a little skew is forgiven and clamped to
now), never before the start of the day the act belongs to (venue time).
"""

from datetime import date, datetime, time, timedelta, timezone

from kiosk.clock import LOCAL_ZONE, now_utc, parse_iso
from kiosk.errors import KioskError

CLOCK_SKEW = timedelta(minutes=2)


class OfflineError(KioskError):
    """A late act whose time is out of bounds."""


def bounded_time(at, earliest_day: date | None, now: datetime | None = None) -> datetime:
    """The time an act was made (ISO text or datetime), checked against the bounds; UTC.

    Raises OfflineError("bad_time") for a time more than CLOCK_SKEW ahead of now or before the
    start of `earliest_day` in venue time (no lower bound when it is None).
    """
    now = now or now_utc()
    try:
        moment = at if isinstance(at, datetime) else parse_iso(str(at))
    except ValueError:
        raise OfflineError("bad_time", f"not an ISO 8601 time: {str(at)[:40]!r}", "at") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    if moment > now + CLOCK_SKEW:
        raise OfflineError("bad_time", f"{moment.isoformat()} is in the future", "at")
    start = earliest_day and datetime.combine(earliest_day, time(0), tzinfo=LOCAL_ZONE)
    if start and moment < start:
        raise OfflineError("bad_time", f"{moment.isoformat()} is before {earliest_day.isoformat()}", "at")
    return min(moment, now).astimezone(timezone.utc)
