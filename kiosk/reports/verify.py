"""Checking a certificate's code offline: the signature first, then whose it is."""

from __future__ import annotations

from kiosk.badges.codes import CodeError, verify_certificate_code
from kiosk.reports.rows import display_name
from kiosk.thai import thai_date_range


def verify_certificate(code: str, keys: dict[str, bytes], lookup) -> dict | None:
    """Name, program and dates of a genuine certificate, or None (mistyped, forged, unknown).

    `lookup(program_id, participant_id)` returns (program, person, cohort) rows or None.
    Nothing else about the person is returned: the page is public.
    """
    try:
        program_id, participant_id = verify_certificate_code(code, keys)
    except CodeError:
        return None
    found = lookup(program_id, participant_id)
    if not found:
        return None
    program, person, cohort = found
    dates = thai_date_range(cohort["starts_on"], cohort.get("ends_on")) if cohort and cohort.get("starts_on") else ""
    return {"name": display_name(person), "program": program.get("title") or "",
            "organizer": program.get("organizer") or "", "cohort": (cohort or {}).get("number"), "dates": dates}
