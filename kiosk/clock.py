"""Record ids (UUIDv7) and the hybrid logical clock that orders changes across devices."""

import os
import threading
import time
from datetime import date, datetime, timedelta, timezone

import uuid6


def new_id() -> str:
    """A new UUIDv7 as text: time-ordered, so indexes stay compact."""
    return str(uuid6.uuid7())


def _venue_zone():
    """Asia/Bangkok; a fixed UTC+7 where no tz database exists (Thailand has had no DST since 1920)."""
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("Asia/Bangkok")
    except Exception:  # ZoneInfoNotFoundError on a Windows Python without `tzdata`
        return timezone(timedelta(hours=7), "ICT")


# Session days and check-in windows are venue time, whatever zone the laptop is set to.
LOCAL_ZONE = _venue_zone()


def local_day(moment: datetime | None = None) -> date:
    """The venue's calendar day at `moment` (default now)."""
    return (moment or now_utc()).astimezone(LOCAL_ZONE).date()


def _test_offset() -> timedelta:
    """Tests only: KIOSK_TEST_NOW (an ISO time, e.g. 2026-12-07T02:00+07:00) starts this process's
    clock there, running on from it, so a real server or command can be tried at 02:00. Read once,
    at start; unset (always, outside tests) it changes nothing."""
    text = os.environ.get("KIOSK_TEST_NOW")
    return parse_iso(text) - datetime.now(timezone.utc) if text else timedelta(0)


def now_utc() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc) + _OFFSET


def iso(moment: datetime) -> str:
    """ISO 8601 text in UTC with milliseconds, the one time format stored."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """Reads a stored or submitted ISO 8601 time; naive times are taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


_OFFSET = _test_offset()


def format_hlc(physical_ms: int, counter: int, device: str) -> str:
    """HLC stamps as text that sorts in clock order: `physical-counter-device`."""
    return f"{physical_ms:013d}-{counter:05d}-{device}"


def parse_hlc(stamp: str) -> tuple[int, int, str]:
    """Splits an HLC stamp into (physical milliseconds, counter, device)."""
    physical, counter, device = stamp.split("-", 2)
    return int(physical), int(counter), device


class HybridClock:
    """A hybrid logical clock (Kulkarni et al.): wall time when it moves on, a counter when not.

    `observe` takes in stamps from other devices so that our next stamp sorts after every
    change we have seen, whatever our wall clock says.
    """

    def __init__(self, device: str, wall=lambda: int(time.time() * 1000)):
        self.device = device
        self._wall = wall
        self._physical = 0
        self._counter = 0
        self._lock = threading.Lock()

    def tick(self) -> str:
        """A new stamp, later than every stamp this clock made or observed."""
        with self._lock:
            wall = self._wall()
            if wall > self._physical:
                self._physical, self._counter = wall, 0
            else:
                self._counter += 1
            return format_hlc(self._physical, self._counter, self.device)

    def observe(self, stamp: str) -> None:
        """Moves the clock past a stamp received from elsewhere."""
        physical, counter, _ = parse_hlc(stamp)
        with self._lock:
            if (physical, counter) > (self._physical, self._counter):
                self._physical, self._counter = physical, counter
