"""Paper fallback: a signature-sheet row's QR, scanned at the door, is a paper check-in.

When the laptop fails, people sign the printed sheet; afterwards staff scan each signed row's QR
(`kiosk.badges.codes.paper_row_code`) and `kiosk.door.checkin.check_in` records a check-in with
`via = "paper"` for that person and the session the sheet was printed for, whatever the time.
"""

from __future__ import annotations

from kiosk.badges.codes import CodeError, paper_row_session, split_paper_code, verify_code
from kiosk.trust.programkeys import program_keys


def paper_row(db, code) -> tuple[str, str] | None:
    """(badge code, session id) of a genuine sheet-row code; None for anything else, which the
    caller then checks as a badge code (and rejects as such if it is a forged row code)."""
    parts = split_paper_code(code) if isinstance(code, str) else None
    if not parts:
        return None
    badge, mac = parts
    keys = program_keys(db)
    try:
        program_id = verify_code(badge, keys)
    except CodeError:
        return None
    ids = [r[0] for r in db.execute("select id from sessions where program_id = ?", [program_id]).fetchall()]
    session_id = paper_row_session(mac, badge, ids, keys[program_id])
    return (badge, session_id) if session_id else None
