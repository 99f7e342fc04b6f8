"""Check-in at the door: one scan, one decision, one stored attempt.

`check_in` verifies the badge signature, reads who holds it for which session, decides whether
the person is already in and records the scan, all inside ONE write transaction (BEGIN
IMMEDIATE), in the request's own thread: two devices racing for the same person queue on the
lock, so one gets `checked_in`, the other `already_checked_in`, and attendance (derived from scans
by `kiosk.store.changes`) counts the person once. Scans that arrive together share a commit
(`kiosk.db.commit_together`).

Every attempt is stored as a `scans` change, failures too, with its reason in `result`. A failed
attempt belongs to the program of the code it carried (signature or tag), else of the session
staff chose, else of a session open at that moment, else to the first program; a kiosk with no
program at all has nowhere to put it and stores nothing.

Check-in windows are local time (Asia/Bangkok) against `sessions.opens_at`/`closes_at`,
`opens_at <= HH:MM < closes_at`. A check-out needs only a session of that day that has opened.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from kiosk.badges.codes import TAG_LEN, CodeError, normalize_code, program_tag, verify_code
from kiosk.clock import LOCAL_ZONE, iso, new_id, now_utc, parse_iso
from kiosk.door.sheet_rows import is_sheet_row_shape, sheet_row
from kiosk.errors import KioskError, message_of
from kiosk.people.participants import get_participant
from kiosk.store import changes
from kiosk.store.db import commit_together, device_id
from kiosk.trust.programkeys import keyless_programs, program_keys

log = logging.getLogger("kiosk.checkin")

SUCCESSES = frozenset({"checked_in", "already_checked_in", "checked_out"})
DIRECTIONS = ("in", "out")
# Longest code text kept on a failed scan: a 10 MB paste is not worth storing.
STORED_CODE_LEN = 64


class CheckinError(KioskError):
    """A scan that checked no one in (or out); `reason` is a stable code, the rest is context."""

    # A badge of another program is bad input at the door (422); in a sync batch it is forbidden.
    STATUS = {"wrong_program": 422}

    def __init__(self, reason: str, message: str | None = None, *, program_id: str | None = None,
                 participant: dict | None = None, session: dict | None = None,
                 replayed: bool = False, detail: str | None = None):
        super().__init__(reason, message, detail=detail)
        self.program_id = program_id
        self.participant = participant
        self.session = session
        self.replayed = replayed


@dataclass(frozen=True)
class CheckinResult:
    """A successful scan: `status` is checked_in, already_checked_in or checked_out."""

    status: str
    participant: dict
    session: dict
    first_checked_in_at: str | None
    scan_id: str
    at: str
    replayed: bool = False

    @property
    def program_id(self) -> str:
        return self.participant["program_id"]



@dataclass(frozen=True)
class _Claim:
    """What a scan claims before the database is asked: a verified code, or a staff override."""

    code: str | None
    program_id: str | None = None
    participant_id: str | None = None
    error: CheckinError | None = None


def check_in(db, code: str | None = None, session_id: str | None = None, at=None,
             device: str | None = None, operator: str | None = None, nonce: str | None = None,
             direction: str = "in", participant_id: str | None = None, paper: bool = False) -> CheckinResult:
    """Checks a badge `code` (or, as a staff override, a `participant_id`) in or out of a session.

    The one door entry, for the API and for direct callers alike. The session is the one open at
    `at` (default now) for the person's cohort unless staff chose `session_id`. The attempt is
    stored whatever the outcome, and the answer comes only once it is committed; the same `nonce`
    from the same `device` again returns (or raises) the first outcome and stores nothing new.
    `paper` records a signed sheet's row code (kiosk.door.sheet_rows) for its own session, which
    is the only thing such a code is good for. Raises CheckinError with its reason (kiosk.errors).
    """
    if direction not in DIRECTIONS or (paper and direction != "in"):
        raise ValueError(f"direction must be one of {DIRECTIONS}, and 'in' for paper")
    code = code if isinstance(code, str) else None  # what is not text is no code
    scan = (code, session_id, _moment(at), device, operator, nonce, direction, participant_id, paper)
    outcome = commit_together(db, lambda conn: _scan(conn, *scan))
    _log(outcome, direction)
    if isinstance(outcome, CheckinError):
        raise outcome
    return outcome


def _log(outcome, direction: str) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    person, session = outcome.participant, outcome.session
    result = outcome.status if isinstance(outcome, CheckinResult) else outcome.reason
    log.info("check-in", extra={"act": "check_in", "result": result, "direction": direction,
                                "participant_id": person["id"] if person else None,
                                "session_id": session["id"] if session else None, "replayed": outcome.replayed})


def _scan(db, code, session_id, moment, device, operator, nonce, direction, participant_id, paper):
    """The decided and stored scan: a CheckinResult, or the CheckinError to raise (stored too,
    so that a batch of scans in one transaction keeps every record). Runs inside the write
    transaction, which is undone as a whole if this raises."""
    device = device or device_id(db)
    earlier = _scan_by_nonce(db, device, nonce)
    if earlier:
        return _replay(db, earlier)
    on_paper = _paper_claim(db, code, session_id, paper)
    if on_paper:
        claim, session_id = on_paper
        paper = claim.error is None
    else:
        claim = _claim(db, code, participant_id)
    found = _find(db, claim, session_id, moment, direction, paper)
    scan_id = new_id()
    if isinstance(found, _Refusal):
        outcome, program_id = found.error, found.program_id
    else:
        try:
            outcome = _mark(db, *found, moment, direction, scan_id)
        except CheckinError as exc:
            outcome = exc
        program_id = found[0]["program_id"]
    _record(db, outcome, program_id, claim, moment, direction, scan_id,
            {"device_id": device, "operator": operator, "nonce": nonce, **({"via": "paper"} if paper else {})})
    return outcome


def _moment(at) -> datetime:
    if at is None:
        return now_utc()
    if isinstance(at, datetime):
        return at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    return parse_iso(at)


def local_hhmm(stamp: str | None) -> str | None:
    """'08:15' in venue time for a stored UTC time."""
    return parse_iso(stamp).astimezone(LOCAL_ZONE).strftime("%H:%M") if stamp else None



# --- the claim: signature first, no database -----------------------------------------------


def _claim(db, code, participant_id: str | None) -> _Claim:
    if participant_id is not None:
        return _Claim(code=None, participant_id=str(participant_id))
    if not isinstance(code, str):
        return _Claim(None, error=CheckinError("invalid_code"))
    keys = program_keys(db)
    try:
        return _Claim(normalize_code(code), program_id=verify_code(code, keys))
    except CodeError as exc:
        stored = normalize_code(code[:STORED_CODE_LEN * 2])[:STORED_CODE_LEN] or None
        detail = "thai_layout" if _has_thai(code[:STORED_CODE_LEN]) else exc.detail
        error = CheckinError(exc.reason, _code_message(exc, detail), program_id=_tag_owner(stored, keys),
                             detail=detail)
        keyless = _tag_owner(stored, keyless_programs(db)) if exc.reason == "wrong_program" else None
        if keyless:
            error = CheckinError("program_key_missing", "this kiosk holds the program but not its key",
                                 program_id=keyless)
        return _Claim(stored, program_id=error.program_id, error=error)


def _paper_claim(db, code, session_id, paper: bool) -> tuple[_Claim, str | None] | None:
    """(claim, session) of a scan that is about a sheet row: one that asks to record paper, or
    whose code has a sheet row's shape. None for every other scan."""
    shaped = is_sheet_row_shape(code)
    if not (paper or shaped):
        return None
    row = sheet_row(db, code) if shaped else None
    stored = normalize_code(code[:STORED_CODE_LEN * 2])[:STORED_CODE_LEN] if code else None
    program_id = row.program_id if row else None
    if not paper:  # a sheet row is not a badge, whoever holds the sheet
        return _Claim(stored, program_id, error=CheckinError("paper_row_at_door", program_id=program_id)), session_id
    if row is None:
        reason = "invalid_code" if shaped else "not_a_sheet_row"
        return _Claim(stored, error=CheckinError(reason, detail="paper")), session_id
    if session_id and session_id != row.session_id:
        error = CheckinError("paper_other_session", program_id=program_id, session=get_door_session(db, row.session_id),
                             participant=get_participant(db, row.participant_id))
        return _Claim(row.code, program_id, error=error), session_id
    return _Claim(row.code, program_id, participant_id=row.participant_id), row.session_id


def _has_thai(text: str) -> bool:
    return any("\u0e00" <= ch <= "\u0e7f" for ch in text)


def _code_message(exc: CodeError, detail: str) -> str:
    if detail == "thai_layout":
        return "the code arrived as Thai letters: the scanner typed through a Thai keyboard layout"
    if exc.reason == "wrong_program":
        return message_of("wrong_program")
    return message_of("invalid_code") + f" ({exc.detail})"


def _tag_owner(code: str | None, keys: dict) -> str | None:
    """The program whose tag a rejected code bears: a forged code of ours is stored as ours."""
    if not code:
        return None
    return next((pid for pid in keys if program_tag(pid) == code[:TAG_LEN]), None)


# --- the decision: who, where, and already in? ----------------------------------------------


@dataclass(frozen=True)
class _Refusal:
    """A scan refused before it is marked: the error to store and raise, and its program."""

    error: CheckinError
    program_id: str | None


def _find(db, claim: _Claim, session_id, moment, direction, paper: bool = False):
    """(participant, session) of a scan, or the _Refusal to store."""
    try:
        participant = _participant(db, claim)
        return participant, _session_for(db, participant, session_id, moment, direction, paper)
    except CheckinError as exc:
        return _Refusal(exc, exc.program_id or _fallback_program(db, session_id, moment))


def _participant(db, claim: _Claim) -> dict:
    if claim.error:
        raise claim.error
    if claim.participant_id is not None:
        person = get_participant(db, claim.participant_id)
        if not person:
            raise CheckinError("unknown_participant")
    else:
        person = _holder(db, claim)
    if person.get("erased_at"):
        raise CheckinError("erased", program_id=person["program_id"])
    if person["status"] in ("withdrawn", "waiting"):  # a waiting walk-in has no seat until admitted
        raise CheckinError("withdrawn" if person["status"] == "withdrawn" else "not_admitted",
                           program_id=person["program_id"], participant=person)
    return person


def _rows(db, sql: str, args) -> list[dict]:
    """Rows as dicts, straight from the connection: this runs at the door, on every scan."""
    cursor = db.conn.execute(sql, args)
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _holder(db, claim: _Claim) -> dict:
    """The participant holding a verified badge code."""
    rows = _rows(db, "select p.*, b.revoked_at as badge_revoked_at from badges b"
                     " join participants p on p.id = b.participant_id where b.code = ?", [claim.code])
    if not rows:
        raise CheckinError("unknown_participant",
                           program_id=claim.program_id)
    person = rows[0]
    if person["erased_at"]:  # their data is gone: no name to show, no attendance to add
        raise CheckinError("erased", program_id=person["program_id"])
    if person.pop("badge_revoked_at"):
        raise CheckinError("revoked_badge",
                           program_id=person["program_id"], participant=person)
    return person


_SESSION_SQL = ("select s.*, c.number as cohort_number from sessions s"
                " join cohorts c on c.id = s.cohort_id")


def _session_for(db, person: dict, session_id, moment, direction, paper: bool = False) -> dict:
    if session_id:
        return _chosen_session(db, person, session_id, moment, direction, paper)
    day, hhmm = _local(moment)
    sql = _SESSION_SQL + " where s.program_id = ? and s.day = ? and s.opens_at <= ? and s.status != 'removed'"
    args = [person["program_id"], day, hhmm]
    if direction == "in":
        sql, args = sql + " and s.closes_at > ?", [*args, hhmm]
    open_now = _rows(db, sql + " order by s.opens_at desc", args)
    mine = [s for s in open_now if s["cohort_id"] == person["cohort_id"]]
    if mine:
        return mine[0]
    if open_now:
        raise _error("wrong_cohort", person, open_now[0])
    raise _not_open(db, person, day, hhmm)


def _not_open(db, person: dict, day: str, hhmm: str) -> CheckinError:
    """no_open_session with the person's session of that day, next to open (detail not_yet) or
    last closed (closed), or none (no_session_today): what the door says to the person."""
    today = _rows(db, _SESSION_SQL + " where s.cohort_id = ? and s.day = ? order by s.opens_at",
                  [person["cohort_id"], day])
    later = [s for s in today if s["opens_at"] > hhmm]
    session = later[0] if later else (today[-1] if today else None)
    detail = "not_yet" if later else ("closed" if today else "no_session_today")
    return CheckinError("no_open_session", program_id=person["program_id"], participant=person,
                        session=session, detail=detail)


def _chosen_session(db, person: dict, session_id: str, moment, direction, paper: bool = False) -> dict:
    session = get_door_session(db, session_id)
    if session is None or session["status"] == "removed":  # a coordinator took it out
        raise CheckinError("no_open_session", "no such session", program_id=person["program_id"],
                           participant=person)
    if session["program_id"] != person["program_id"]:
        raise _error("wrong_program", person, session)
    if session["cohort_id"] != person["cohort_id"]:
        raise _error("wrong_cohort", person, session)
    if not paper and not is_open(session, moment, direction):
        day, hhmm = _local(moment)
        detail = "other_day" if session["day"] != day else ("not_yet" if hhmm < session["opens_at"] else "closed")
        raise CheckinError("no_open_session", program_id=person["program_id"], participant=person,
                           session=session, detail=detail)
    if paper and not has_started(session, moment):  # a signed sheet is scanned after the session, not before
        raise _error("no_open_session", person, session)
    return session


def _error(reason: str, person: dict, session: dict | None = None) -> CheckinError:
    return CheckinError(reason, program_id=person["program_id"], participant=person,
                        session=session)


def _local(moment: datetime) -> tuple[str, str]:
    local = moment.astimezone(LOCAL_ZONE)
    return local.date().isoformat(), local.strftime("%H:%M")


def is_open(session: dict, moment: datetime | None = None, direction: str = "in") -> bool:
    """Whether a session takes check-ins (or, for "out", check-outs) at `moment`."""
    day, hhmm = _local(moment or now_utc())
    if session["day"] != day or hhmm < session["opens_at"]:
        return False
    return direction == "out" or hhmm < session["closes_at"]


def has_started(session: dict, moment: datetime | None = None) -> bool:
    """Whether a session's check-in had opened by `moment` (on its day or any later day)."""
    day, hhmm = _local(moment or now_utc())
    return session["day"] < day or (session["day"] == day and hhmm >= session["opens_at"])


def _mark(db, person: dict, session: dict, moment, direction, scan_id) -> CheckinResult:
    row = db.execute("select first_at from attendance where participant_id = ? and session_id = ?",
                     [person["id"], session["id"]]).fetchone()
    if direction == "out":
        if not row:
            raise _error("not_checked_in", person, session)
        status, first_at = "checked_out", row[0]
    elif row:
        status, first_at = "already_checked_in", row[0]
    else:
        status, first_at = "checked_in", iso(moment)
    return CheckinResult(status, person, session, first_at, scan_id, iso(moment))


# --- storing and replaying ------------------------------------------------------------------


def _record(db, outcome, program_id: str | None, claim: _Claim, moment, direction, scan_id, origin: dict) -> None:
    """Stores the attempt as a scans change of `program_id` (attendance follows from a
    checked_in scan)."""
    if program_id is None:
        return  # no program on this kiosk at all: nothing to attribute the attempt to
    result = outcome.status if isinstance(outcome, CheckinResult) else outcome.reason
    person, session = outcome.participant, outcome.session
    changes.write(db, program_id, "scans", scan_id, {
        "participant_id": person["id"] if person else None,
        "session_id": session["id"] if session else None,
        "code": claim.code, "result": result, "direction": direction, **origin, "at": iso(moment),
    }, savepoint=False)


def _fallback_program(db, session_id, moment) -> str | None:
    """The program of a chosen session, else of a session open now, else the first program."""
    if session_id and (session := get_door_session(db, session_id)):
        return session["program_id"]
    day, hhmm = _local(moment)
    row = db.execute("select program_id from sessions where day = ? and opens_at <= ? and closes_at > ?"
                     " order by opens_at limit 1", [day, hhmm, hhmm]).fetchone()
    row = row or db.execute("select id from programs order by created_at, id limit 1").fetchone()
    return row[0] if row else None


def _scan_by_nonce(db, device: str, nonce: str | None) -> dict | None:
    if not nonce:
        return None
    rows = _rows(db, "select * from scans where device_id = ? and nonce = ?", [device, nonce])
    return rows[0] if rows else None


def _replay(db, scan: dict):
    """The first outcome of a nonce, rebuilt from its stored scan."""
    person = get_participant(db, scan["participant_id"]) if scan["participant_id"] else None
    session = get_door_session(db, scan["session_id"]) if scan["session_id"] else None
    if scan["result"] not in SUCCESSES:
        return CheckinError(scan["result"],
                            program_id=scan["program_id"], participant=person, session=session, replayed=True)
    row = db.execute("select first_at from attendance where participant_id = ? and session_id = ?",
                     [scan["participant_id"], scan["session_id"]]).fetchone()
    return CheckinResult(scan["result"], person, session, row[0] if row else scan["at"], scan["id"],
                         scan["at"], replayed=True)


# --- sessions and badges at the door ----------------------------------------------------------


def get_door_session(db, session_id: str) -> dict | None:
    """A session with its cohort number."""
    rows = _rows(db, _SESSION_SQL + " where s.id = ?", [session_id])
    return rows[0] if rows else None
