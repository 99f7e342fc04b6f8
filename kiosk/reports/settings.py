"""What a coordinator sets for the papers: the certificate rule, the allowance rate, and the
progress report's notes per period; and the progress percentage computed beside them.

Each setter takes a `write(program_id, entity, entity_id, fields)`: a kiosk passes its change
log's writer (`kiosk_writer(db)`), the central server its own (`Storage.originate`), so the
setting travels by sync like any other change.
"""

from __future__ import annotations

import calendar
import re
import uuid
from datetime import date
from decimal import Decimal, InvalidOperation

from kiosk.clock import iso, now_utc
from kiosk.errors import KioskError
from kiosk.reports.certificates import CertificateRule
from kiosk.reports.rows import Dataset, percent
from kiosk.thai import BE_OFFSET, THAI_MONTHS, clean_text, reject_formula

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_PERIOD_NS = uuid.UUID("6f1c2d1e-9a54-4c1b-8d0e-2b9f6f0c5a11")
NOTE_LIMIT = 2000


def kiosk_writer(db):
    """The writer for a kiosk database: its change log."""
    from kiosk.store import changes

    return lambda program_id, entity, entity_id, fields: changes.write(db, program_id, entity, entity_id, fields)


def set_certificate_rule(write, program_id: str, rule: CertificateRule) -> None:
    """Stores the program's certificate rule (see kiosk.reports.certificates.make_rule)."""
    write(program_id, "programs", program_id, {"certificate_rule": rule.to_json()})


def parse_rate(raw) -> Decimal:
    """A per-day rate in baht from text or a number; raises KioskError("bad_rate")."""
    try:
        rate = Decimal(str(raw).replace(",", "").strip())
    except InvalidOperation:
        raise KioskError("bad_rate", field="rate") from None
    if not rate.is_finite() or rate < 0 or rate > 1_000_000:
        raise KioskError("bad_rate", field="rate")
    return rate.quantize(Decimal("0.01"))


def set_allowance_rate(write, program_id: str, raw) -> Decimal:
    """Stores the program's per-day allowance rate; returns it."""
    rate = parse_rate(raw)
    write(program_id, "programs", program_id, {"allowance_rate": float(rate)})
    return rate


def parse_period(raw: str) -> str:
    """A reporting period: a Buddhist-Era month '2569-11' (or Gregorian '2026-11', kept BE), or a
    short name ('ไตรมาส 1'); raises KioskError("bad_period")."""
    text = clean_text(raw)
    found = _MONTH.match(text)
    if found:
        year, month = int(found[1]), int(found[2])
        if not 1 <= month <= 12:
            raise KioskError("bad_period", field="period")
        return f"{year + BE_OFFSET if year < 2400 else year}-{month:02d}"
    if not text or len(text) > 40:
        raise KioskError("bad_period", field="period")
    reject_formula(text)
    return text


def period_label(period: str) -> str:
    """'2569-11' → 'พฤศจิกายน 2569'; other periods as written."""
    found = _MONTH.match(period or "")
    return f"{THAI_MONTHS[int(found[2]) - 1]} {found[1]}" if found else period


def period_end(period: str) -> date | None:
    """The last day of a month period (Gregorian date), None for a named period."""
    found = _MONTH.match(period or "")
    if not found:
        return None
    year, month = int(found[1]) - BE_OFFSET, int(found[2])
    return date(year, month, calendar.monthrange(year, month)[1])


def entry_id(program_id: str, cohort_id: str | None, period: str) -> str:
    """One entry per (program, cohort, period), the same id on every replica: edits merge."""
    return str(uuid.uuid5(_PERIOD_NS, f"{program_id}:{cohort_id or ''}:{period}"))


def save_progress_entry(write, program_id: str, cohort_id: str | None, period: str, problems: str,
                        obstacles: str, author: str) -> str:
    """Writes (or rewrites) the period's problems and obstacles; returns the entry id."""
    period = parse_period(period)
    notes = {}
    for name, value in (("problems", problems), ("obstacles", obstacles)):
        value = "\n".join(clean_text(line) for line in str(value or "").splitlines()).strip()
        if len(value) > NOTE_LIMIT:
            raise KioskError("field_too_long", field=name)
        notes[name] = value  # free text: the exports write formula-like text as text
    eid = entry_id(program_id, cohort_id, period)
    write(program_id, "progress_entries", eid, {"cohort_id": cohort_id, "period": period, **notes,
                                                "written_by": author, "written_at": iso(now_utc())})
    return eid


def progress_percent(data: Dataset, period: str) -> dict:
    """People who attended by the end of the period against the target (program-wide targets,
    else everyone registered): {"attended", "target", "percent"}."""
    end = period_end(period)
    day_of = {s["id"]: s["day"] for s in data.sessions}
    active = {p["id"] for p in data.active}
    came = {a["participant_id"] for a in data.attendance if a["participant_id"] in active
            and (end is None or day_of.get(a["session_id"], "9999") <= end.isoformat())}
    goal = sum(int(t["expected"]) for t in data.targets if not t.get("role") and not t.get("area_code"))
    target = goal or len(active)
    return {"attended": len(came), "target": target, "percent": percent(len(came), target)}


def progress_rows(data: Dataset, entries: list[dict]) -> list[dict]:
    """Each period's entry with its computed percentage, latest period first."""
    rows = [{**e, "label": period_label(e["period"]), **progress_percent(data, e["period"])} for e in entries]
    return sorted(rows, key=lambda r: r["period"], reverse=True)
