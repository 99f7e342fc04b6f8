"""Checking a certificate's code offline: the signature first, then whose it is and whether it
still stands: a certificate is withdrawn when its person is withdrawn, erased (PDPA) or no
longer earns it under the program's rule (a session corrected, the rule changed)."""

from __future__ import annotations

from kiosk.badges.codes import CodeError, verify_certificate_code
from kiosk.reports.aggregates import Reader, program_row
from kiosk.reports.certificates import eligible, parse_rule
from kiosk.reports.rows import Dataset, display_name
from kiosk.thai import thai_date_range

VERIFY_PATH = "/verify/"


def code_of(text: str) -> str:
    """The code of what was typed or scanned: a bare code, or the certificate QR's link
    (https://central…/verify/CODE) read by a scanner into the kiosk's offline check."""
    text = (text or "").strip()
    if VERIFY_PATH in text.lower():
        text = text[text.lower().rindex(VERIFY_PATH) + len(VERIFY_PATH):]
    return text.split("?", 1)[0].split("#", 1)[0].strip("/ ")


def verify_certificate(code: str, keys: dict[str, bytes], lookup) -> dict | None:
    """Name, program, dates and standing ("valid" or "withdrawn") of a genuine certificate, or
    None (mistyped, forged, unknown).

    `lookup(program_id, participant_id)` returns the person's `Dataset` (`person_dataset`) or
    None. Nothing else about the person is returned: the page is public.
    """
    try:
        program_id, participant_id = verify_certificate_code(code_of(code), keys)
    except CodeError:
        return None
    data = lookup(program_id, participant_id)
    if not data or not data.participants:
        return None
    person, cohort = data.participants[0], (data.cohorts or [{}])[0]
    # an erased person's certificate is withdrawn: their name is gone, their attendance anonymous
    earned = not person.get("erased_at") and bool(eligible(data, parse_rule(data.program.get("certificate_rule"))))
    dates = thai_date_range(cohort["starts_on"], cohort.get("ends_on")) if cohort.get("starts_on") else ""
    return {"name": display_name(person), "program": data.program.get("title") or "",
            "organizer": data.program.get("organizer") or "", "cohort": cohort.get("number"), "dates": dates,
            "status": "valid" if earned else "withdrawn"}


def person_dataset(reader: Reader, program_id: str, participant_id: str) -> Dataset | None:
    """One person's rows for the rule: the program, their cohort and its sessions (a removed one
    left out by the Dataset), their attendance (one SQL text for a kiosk and central, see
    kiosk.reports.aggregates)."""
    program = program_row(reader, program_id)
    args = {"program": program_id, "person": participant_id}
    people = reader.run(f"""select p.id, p.cohort_id, p.title, p.first_name, p.last_name, p.role, p.status,
                            p.erased_at from participants p where p.program_id = :program and p.id = :person
                            and (p.first_name is not null or p.erased_at is not null){reader.live('p')}""", args)
    if not program or not people:
        return None
    args["cohort"] = people[0]["cohort_id"]
    cohorts = reader.run(f"""select c.id, c.number, c.starts_on, c.ends_on from cohorts c where c.program_id = :program
                             and c.id = :cohort{reader.live('c')}""", args)
    sessions = reader.run(f"""select s.id, s.cohort_id, s.day, s.slot, s.opens_at, s.status from sessions s
                              where s.program_id = :program and s.cohort_id = :cohort{reader.live('s')}""", args)
    marks = reader.run("""select a.participant_id, a.session_id, a.first_at from attendance a
                          where a.program_id = :program and a.participant_id = :person""", args)
    return Dataset(program, cohorts, sessions, people, marks)
