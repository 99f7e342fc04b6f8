"""The one error contract: a base error with a stable `reason`, the registry of reasons, the JSON body.

Every domain error derives from `KioskError`. Its `reason` is a code in `REASONS`, which gives the
English message (the msgid; Thai comes from the catalog where the error is shown) and the HTTP
status. The web layers (kiosk, peer sync, central) answer `error_body(...)` for JSON and render the
translated message for pages; the CLI prints the same message. Reason codes never change once
shipped. This module imports no Flask: the domain raises these errors without a web stack.
"""

from __future__ import annotations

from dataclasses import dataclass


def N_(text: str) -> str:
    """Marks a message for extraction into the catalog; it is translated where it is shown."""
    return text


@dataclass(frozen=True)
class Reason:
    code: str
    status: int
    message: str


REASONS: dict[str, Reason] = {}


def _register(status: int, **messages: str) -> None:
    for code, message in messages.items():
        if code in REASONS:
            raise ValueError(f"reason {code} registered twice")
        REASONS[code] = Reason(code, status, message)


# --- people, rosters, registration -------------------------------------------------------------
_register(
    400,
    missing_name=N_("A first and last name are required."),
    name_too_long=N_("The name is too long (100 characters at most)."),
    field_too_long=N_("The text is too long."),
    bad_text=N_("Use plain text: no HTML, no control characters."),
    unknown_area=N_("Unknown province, district or subdistrict."),
    ambiguous_area=N_("This district name exists in several provinces: give the province."),
    bad_national_id=N_("The national ID must be 13 digits with a valid check digit."),
    bad_phone=N_("The phone number is not a Thai number."),
    unknown_role=N_("Unknown role: use participant, speaker, staff or observer."),
    bad_status=N_("The status is active or withdrawn."),
    formula=N_("The cell looks like a spreadsheet formula; type plain text."),
    duplicate=N_("The same person appears twice in the file."),
    empty_file=N_("The file is empty."),
    not_a_roster=N_("This is not a CSV or Excel (.xlsx) file."),
    old_excel=N_("Old .xls files cannot be read: save as .xlsx or CSV."),
    bad_encoding=N_("The text is neither UTF-8 nor Thai Windows (TIS-620)."),
    bad_xlsx=N_("The Excel file cannot be read."),
    no_roster_sheet=N_("No sheet has a header row with name columns."),
    no_header=N_("No header row with name columns (ชื่อ, นามสกุล)."),
    too_many_rows=N_("The file has too many rows."),
    missing_reason=N_("Say why, in a few words: the reason is kept with the correction."),
    session_not_started=N_("This session has not started yet: a person can be marked present from its day on."),
    not_active=N_("Only a person who is taking part can be marked present: admit or reinstate them first."),
)
_register(409, already_attended=N_("This person is already counted present at this session."))
_register(413, file_too_large=N_("The file is too large (10 MB at most)."))

# --- self-registration on a tablet -------------------------------------------------------------
_register(
    400,
    missing_phone=N_("A phone number is required."),
    pdpa_required=N_("Please read the personal data notice and accept it."),
    invalid_form=N_("Some fields need attention: see the messages beside them."),
    bad_idempotency_key=N_("The form sent no valid submission key: reload the page."),
    bad_time=N_("The time is in the future or before the day it belongs to."),
    choice_expired=N_("This choice has expired: please send the form again."),
    missing_area=N_("Choose the province and the district."),
    bad_setting=N_("Idle time is 15 to 600 seconds; a full cohort refuses or takes a waiting list."),
    bad_roles=N_("Choose at least one role this tablet offers."),
    bad_capacity=N_("The capacity is a whole number of seats (1 or more), or empty for none."),
    role_not_offered=N_("This tablet does not register this role: ask staff at the registration desk."),
)
_register(409, quota_full=N_("This training is full, so registration here is closed. Please speak to the staff "
                             "at the registration desk."),
          possible_duplicate=N_("Someone with these details is already registered. If it is you, your badge is "
                                "at the registration desk."),
          national_id_taken=N_("This national ID is already registered. If it is yours, your badge is at the "
                               "registration desk; if not, check the 13 digits."),
          ask_at_desk=N_("These details were looked up several times on the tablets. Please register at the "
                         "registration desk with staff."))
_register(429, tablet_paused=N_("This tablet is paused: it found several people who are already registered. "
                                "Please go to the registration desk; staff can resume it."))
_register(403, tablet_only=N_("This tablet is set up for registration only."),
          not_paired=N_("This browser is not a registration tablet. Ask the coordinator to pair it."),
          bad_pairing_code=N_("The pairing link is wrong, used or expired: ask for a new one."))

# --- event set-up ------------------------------------------------------------------------------
_register(
    400,
    missing_title=N_("The program needs a title."),
    bad_date=N_("Not a date: use 2026-11-21 or 21/11/2569."),
    bad_days=N_("A cohort lasts 1 to 31 days."),
    bad_slot=N_("Only a whole-day session can be split into morning and afternoon."),
    bad_window=N_("The check-in window must run from an earlier to a later time (HH:MM)."),
    bad_target=N_("The expected count is a whole number, zero or more."),
    unknown_slot=N_("The slot is a whole day, a morning or an afternoon."),
    bad_kind=N_("A site is a venue or a remote office."),
    choose_program=N_("Several programs exist: name one with --program."),
)
_register(409, duplicate_cohort=N_("This cohort number already exists."),
          session_in_use=N_("This session already has scans."),
          session_overlap=N_("These times overlap another session of the cohort on the same day: change the times, "
                             "or remove the other session first."),
          session_has_checkins=N_("People have already checked in to this session, so its day cannot change. "
                                  "Correct its times, or remove it and add a session on the right day."),
          duplicate_target=N_("A target for this cohort, role and area already exists: change that one instead."))
_register(404, unknown_cohort=N_("No such cohort."), unknown_program=N_("No such program."),
          unknown_session=N_("No such session."), unknown_target=N_("No such target."))

# --- accounts ----------------------------------------------------------------------------------
_register(
    400,
    bad_username=N_("User name: 2–40 letters, digits, dot, dash or underscore."),
    bad_role=N_("The role is coordinator or staff."),
    weak_password=N_("The password needs at least 8 characters."),
)
_register(403, bad_setup_code=N_("Wrong set-up code. It is printed in the window where the server was started."),
          setup_done=N_("A coordinator account already exists: log in."))
_register(409, duplicate_user=N_("This user name is taken."),
          own_account=N_("You cannot disable your own account: ask another coordinator."),
          last_coordinator=N_("This is the last coordinator account that works: create or enable another "
                              "coordinator first."))
_register(404, unknown_user=N_("No such user."))

# --- the door ----------------------------------------------------------------------------------
_register(
    409,
    wrong_cohort=N_("This person belongs to another cohort or day."),
    no_open_session=N_("No session is open for check-in now."),
    withdrawn=N_("This person has withdrawn from the program."),
    not_admitted=N_("This person is on the waiting list and not admitted yet. A coordinator admits them on "
                    "the person's page; then print their badge."),
    not_checked_in=N_("This person has not checked in to this session."),
)
_register(422, invalid_code=N_("Not a badge of this event: mistyped, damaged or forged."),
          paper_row_at_door=N_("This QR is a row of a signature sheet, not a badge. Signed sheets are recorded "
                               "after the session with \"Signed sheet\" on the scan page."),
          not_a_sheet_row=N_("This is not a row of a signature sheet: scan the small QR beside the signature."))
_register(409, paper_other_session=N_("This sheet row belongs to another session: choose that session, "
                                      "or \"Automatic\"."))
_register(404, unknown_participant=N_(
    "The badge is genuine but nobody on this kiosk holds it. Sync, or search by name."))
_register(410, revoked_badge=N_(
    "This badge was replaced by a newer one. Ask for the new badge or search by name."))
_register(400, empty_frame=N_("No camera image was sent."), bad_image=N_("The camera image cannot be read."))
_register(413, frame_too_large=N_("The camera image is too large."))

# --- documents ---------------------------------------------------------------------------------
_register(503, no_text_shaping=N_(
    "Thai text shaping (Raqm) is missing on this computer: badges would print without tone marks."))

# --- reports, certificates, allowances -----------------------------------------------
_register(
    400,
    bad_certificate_rule=N_("The certificate rule is all sessions, at least N % of sessions (N from 1 to 100), "
                            "or all days."),
    bad_rate=N_("The allowance rate is a number of baht, zero or more."),
    bad_period=N_("The period is a month (2569-11) or a short name of up to 40 characters."),
    bad_report_format=N_("The report format is csv or xlsx."),
    bad_verify_url=N_("The public address of the central server is a web address such as "
                      "https://central.example.go.th (no spaces, no ? or #)."),
)
_register(404, unknown_certificate=N_("No certificate matches this code: it is mistyped or forged."))

# --- sync --------------------------------------------------------------------------------------
_register(
    400,
    bad_json=N_("The request body is not a JSON object."),
    protocol_version=N_("This device speaks another sync protocol version: update this kiosk."),
    bundle_truncated=N_("The bundle file is incomplete (cut short while copying?)."),
    bundle_tampered=N_("The bundle file was altered or is not a bundle of this program."),
)
_register(422, unknown_entity=N_("A change names an unknown kind of record."),
          unknown_field=N_("A change names an unknown field."),
          bad_change=N_("A change is malformed."),
          bad_field=N_("A change carries a value of the wrong kind or length."),
          missing_field=N_("A change creates a record without its required fields."),
          bad_clock=N_("A change carries a malformed clock stamp, or one of another device."),
          clock_ahead=N_("A change is stamped far in the future: check the date and time of the computer that made it."),
          bad_signature=N_("A change is not signed by the device it claims to come from."))
_register(409, seq_gap=N_("Changes arrived out of order; the sync will resend them."),
          origin_mismatch=N_("A change claims another device's history."))
_register(403, wrong_program=N_("This belongs to another program."),
          revoked_device=N_("This device was revoked on the central server."),
          revoked_origin=N_("These changes were made by a device revoked on the central server, after its "
                            "revocation: they are refused."),
          bad_code=N_("The enrolment code is wrong, used or expired."))
_register(401, unauthenticated=N_("Log in or send a staff API token."),
          unenrolled=N_("This device is not enrolled with the central server."),
          replayed=N_("This request was already received."),
          bad_timestamp=N_("This device's clock is more than a week from the server's: set its date and time."))
_register(409, program_key_missing=N_("This kiosk does not have this program's key yet. Sync with the central "
                                     "server or a paired laptop, or type in the key printed with "
                                     "\"kiosk program key\" on a kiosk that has it."))
_register(400, bad_ca=N_("This file is not a CA certificate: copy ca.pem from the central server's data folder."))
_register(422, bad_program_key=N_("That is not this program's key: check the 13 groups of four letters and digits."))
_register(502, not_a_sync_server=N_("Something answered at this address, but it is not a central server (or a "
                                   "laptop) of the attendance kiosk: check the address and its port."))
_register(503, unreachable=N_("The other side cannot be reached. The data stays here and is sent later."))

# --- personal data (PDPA) -----------------------------------------------------------------------
_register(409, erased=N_("This person's data was erased (at their request or at the end of the program): "
                         "they cannot be checked in. Register them again if they are here."),
          already_erased=N_("This person's data was erased already."))
_register(400, erasure_reason=N_("Say why the data is erased (for example: the person asked). Do not type "
                                 "the person's name or other personal data."),
          ambiguous_person=N_("Several people match: give the person's id (shown on their page)."),
          retention_too_late=N_("The privacy notice promises deletion at most 2 years after the training: "
                                "choose an earlier date."),
          retention_past=N_("This date has passed: choose a later date, or erase the people now."))

# --- operations: backups, restore, disk ---------------------------------------------------------
_register(409, kiosk_running=N_("The kiosk is serving from this data folder: stop \"kiosk serve\" first, then restore."))
_register(
    400,
    not_a_kiosk_database=N_("This file is not a backup of a kiosk database."),
    backup_damaged=N_("This backup is damaged or incomplete (it fails SQLite's integrity check)."),
    backup_folder_unusable=N_("This folder does not exist or cannot be written to. Plug in the USB stick "
                              "and give the folder's full path."),
    recovery_key_needed=N_("This backup is sealed: type the recovery key that was printed for it "
                           "(8 groups of 6 digits)."),
    recovery_key_mistyped=N_("The recovery key is mistyped: it is 8 groups of 6 digits. Check the group "
                             "named here against the printed key."),
    recovery_key_wrong=N_("This recovery key is not the one this backup was sealed with: find the printed "
                          "key whose key ID matches the backup's."),
)
_register(409, recovery_key_missing=N_("No recovery key yet, so no backup is copied outside the data folder. "
                                       "Make one on the Health page (or with \"kiosk recovery-key --new\") "
                                       "and print it."))
_register(507, disk_full=N_("The disk is almost full, so nothing more is saved. Free some space on this "
                            "laptop (delete large files, empty the trash), then try again."))

# --- any request -------------------------------------------------------------------------------
_register(400, bad_request=N_("The request is not valid."),
          csrf=N_("The form expired or was sent from elsewhere. Please go back, reload and try again."))
_register(403, forbidden=N_("You may not do this with this account."))
_register(404, not_found=N_("There is no such page."))
_register(405, method_not_allowed=N_("This address does not take this kind of request."))
_register(413, payload_too_large=N_("The request is too large."))
_register(429, too_many_requests=N_("Too many attempts: wait a moment and try again."))
_register(500, server_error=N_("Something went wrong on this computer. Nothing was saved; please try again."))

# Werkzeug's HTTP errors, by status, as reasons.
HTTP_REASONS = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 413: "payload_too_large", 429: "too_many_requests"}


class KioskError(Exception):
    """A refused act: `reason` is a stable code in REASONS; the text is the detail, in English.

    `field` names the form field at fault; `detail` is a finer machine-readable cause.
    A subclass may set `STATUS` to answer some reasons with another HTTP status in its domain.
    """

    STATUS: dict[str, int] = {}

    def __init__(self, reason: str, message: str | None = None, field: str | None = None, *,
                 detail: str | None = None):
        super().__init__(message or (REASONS[reason].message if reason in REASONS else reason))
        self.reason = reason
        self.field = field
        self.detail = detail

    @property
    def status(self) -> int:
        if self.reason in self.STATUS:
            return self.STATUS[self.reason]
        return status_of(self.reason)

    def body(self, message: str | None = None, **extra) -> dict:
        """The JSON error body for this error, with `message` (translated) instead of the detail."""
        return error_body(self.reason, message or str(self), **extra)


class PeopleError(KioskError):
    """A participant's data is not acceptable; `field` names the field at fault."""


def status_of(reason: str) -> int:
    """The HTTP status of a reason; an unregistered one (a bug) answers 400, never a crash."""
    found = REASONS.get(reason)
    return found.status if found else 400


def message_of(reason: str) -> str:
    """The English message of a reason (translate it where it is shown)."""
    found = REASONS.get(reason)
    return found.message if found else reason


def error_body(reason: str, message: str | None = None, **extra) -> dict:
    """The one JSON error body: {"ok": false, "reason": CODE, "error": MESSAGE, ...extra}."""
    return {"ok": False, "reason": reason, "error": message or message_of(reason), **extra}
