"""Paper fallback: a signature-sheet row's QR, scanned back after the session, is a paper record.

When the laptop fails, people sign the printed sheet; afterwards staff choose "signed sheet" on the
scan page and scan each signed row's QR (`kiosk.badges.codes.paper_row_code`), and
`kiosk.door.checkin.check_in` records a check-in with `via = "paper"` for that person and the
session the sheet was printed for, whatever the time. The row code is no badge: it names its
person and session only through keyed references, so nothing in it checks anyone in at the door.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.badges.codes import normalize_code, paper_ref, paper_row_is, program_tag, split_paper_code
from kiosk.trust.programkeys import program_keys


@dataclass(frozen=True)
class SheetRow:
    """A genuine sheet-row code: the person and the session it was printed for."""

    code: str
    program_id: str
    participant_id: str
    session_id: str


def is_sheet_row_shape(code) -> bool:
    """Whether `code` looks like a sheet-row code (genuine or not)."""
    return split_paper_code(code) is not None


def sheet_row(db, code) -> SheetRow | None:
    """The person and session of a genuine sheet-row code; None for anything else (a forged or
    mistyped row code, a badge, garbage)."""
    row = split_paper_code(code)
    if row is None:
        return None
    for program_id, key in program_keys(db).items():
        if program_tag(program_id) != row.tag:
            continue
        people = _with_ref(db, "participants", program_id, key, "person", row.person_ref)
        sessions = _with_ref(db, "sessions", program_id, key, "session", row.session_ref)
        for person in people:
            for session in sessions:
                if paper_row_is(row, person, session, key):
                    return SheetRow(normalize_code(code), program_id, person, session)
    return None


def _with_ref(db, table: str, program_id: str, key: bytes, kind: str, ref: str) -> list[str]:
    """Ids of the program's rows whose keyed reference is `ref` (one, bar a 1-in-10^12 collision)."""
    ids = (r[0] for r in db.execute(f"select id from {table} where program_id = ?", [program_id]).fetchall())
    return [i for i in ids if paper_ref(key, kind, i) == ref]
