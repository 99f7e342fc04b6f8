"""Reason codes as the user reads them, in the user's language."""

from flask_babel import lazy_gettext as _l

MESSAGES = {
    # people and rosters
    "missing_name": _l("A first and last name are required."),
    "unknown_area": _l("Unknown province, district or subdistrict."),
    "ambiguous_area": _l("This district name exists in several provinces: give the province."),
    "bad_national_id": _l("The national ID must be 13 digits with a valid check digit."),
    "bad_phone": _l("The phone number is not a Thai number."),
    "unknown_role": _l("Unknown role: use participant, speaker, staff or observer."),
    "formula": _l("The cell looks like a spreadsheet formula; type plain text."),
    "duplicate": _l("The same person appears twice in the file."),
    "empty_file": _l("The file is empty."),
    "file_too_large": _l("The file is too large (10 MB at most)."),
    "not_a_roster": _l("This is not a CSV or Excel (.xlsx) file."),
    "old_excel": _l("Old .xls files cannot be read: save as .xlsx or CSV."),
    "bad_encoding": _l("The text is neither UTF-8 nor Thai Windows (TIS-620)."),
    "bad_xlsx": _l("The Excel file cannot be read."),
    "no_roster_sheet": _l("No sheet has a header row with name columns."),
    "no_header": _l("No header row with name columns (ชื่อ, นามสกุล)."),
    "too_many_rows": _l("The file has too many rows."),
    # event set-up
    "missing_title": _l("The program needs a title."),
    "bad_date": _l("Not a date: use 2026-11-21 or 21/11/2569."),
    "duplicate_cohort": _l("This cohort number already exists."),
    "bad_days": _l("A cohort lasts 1 to 31 days."),
    "bad_slot": _l("Only a whole-day session can be split into morning and afternoon."),
    "bad_window": _l("The check-in window must run from an earlier to a later time (HH:MM)."),
    "session_in_use": _l("This session already has scans."),
    "bad_target": _l("The expected count cannot be negative."),
    "bad_kind": _l("A site is a venue or a remote office."),
    "unknown_cohort": _l("No such cohort."),
    # accounts
    "bad_setup_code": _l("Wrong set-up code. It is printed in the window where the kiosk was started."),
    "bad_username": _l("User name: 2–40 letters, digits, dot, dash or underscore."),
    "bad_role": _l("The role is coordinator or staff."),
    "weak_password": _l("The password needs at least 8 characters."),
    "duplicate_user": _l("This user name is taken."),
}


def message_for(exc: Exception) -> str:
    """The translated message of a domain error, with its detail when it has one."""
    text = MESSAGES.get(getattr(exc, "reason", ""))
    return f"{text} ({exc})" if text else str(exc)
