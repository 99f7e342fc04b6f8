"""Roster import: CSV (UTF-8, with or without BOM, or Thai Windows cp874) and XLSX, Thai or English headers.

All or nothing by default: every bad row is reported with its row number and reason, and
nothing is written unless every row is good. Re-importing the same file changes nothing;
an edited file updates the people it changed.
"""

import csv
import io
import json
import logging
import re
import secrets
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.errors import KioskError, PeopleError
from kiosk.paths import write_atomically
from kiosk.people.participants import (
    ValidFields,
    participant_fields,
    register_participant,
    update_participant,
)
from kiosk.people.privacy import consent_fields
from kiosk.store.db import transaction
from kiosk.thai import clean_text, repair_phone, split_title

log = logging.getLogger("kiosk.roster")

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 20_000
HEADERS = {
    "title": ("คำนำหน้า", "คำนำหน้าชื่อ", "title", "prefix"),
    "first_name": ("ชื่อ", "ชื่อจริง", "firstname", "first_name", "first name", "given name"),
    "last_name": ("นามสกุล", "สกุล", "lastname", "last_name", "last name", "surname", "family name"),
    "full_name": ("ชื่อ-สกุล", "ชื่อ-นามสกุล", "ชื่อ - นามสกุล", "ชื่อสกุล", "fullname", "full name", "name"),
    "role": ("ประเภท", "บทบาท", "สถานะ", "role", "type"),
    "position": ("ตำแหน่ง", "position"),
    "organization": ("หน่วยงาน", "สังกัด", "organization", "organisation", "agency"),
    "province": ("จังหวัด", "province"),
    "district": ("เขต", "อำเภอ", "เขต/อำเภอ", "อำเภอ/เขต", "district"),
    "subdistrict": ("แขวง", "ตำบล", "แขวง/ตำบล", "ตำบล/แขวง", "subdistrict", "sub-district"),
    "community": ("ชุมชน", "community", "หมู่บ้าน", "village"),
    "phone": ("โทรศัพท์", "เบอร์โทร", "เบอร์โทรศัพท์", "มือถือ", "phone", "mobile", "tel", "telephone"),
    "national_id": ("เลขบัตรประชาชน", "เลขประจำตัวประชาชน", "เลขบัตรประจำตัวประชาชน", "national id",
                    "national_id", "citizen id", "id card"),
    "ignore": ("ลำดับ", "ลำดับที่", "ที่", "no", "no.", "#", "หมายเหตุ", "note", "notes"),
}


def _header_key(text) -> str:
    return re.sub(r"[\s_.]", "", clean_text(text).lower())


_HEADER_INDEX = {_header_key(alias): name for name, aliases in HEADERS.items() for alias in aliases}


class RosterError(KioskError):
    """The file as a whole cannot be read."""


@dataclass
class RowProblem:
    """A bad row: its number as Excel shows it, the person it names, the field and value at fault."""

    row: int
    reason: str
    message: str
    name: str = ""
    field: str | None = None
    value: str = ""
    same_as: int | None = None  # a duplicate: the row it repeats

    def __str__(self) -> str:
        return self.message


@dataclass
class Repair:
    """A value the import put right, said on the result page (a phone Excel kept as a number)."""

    row: int
    name: str
    before: str
    after: str


@dataclass
class Move:
    """A person the file puts in this cohort who is now in another cohort of the program."""

    row: int
    name: str
    from_cohort: int | None


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)
    imported: bool = False
    skip_bad: bool = False
    good: int = 0

    @property
    def needs_confirmation(self) -> bool:
        """True when nothing was imported only because people would move between cohorts."""
        return not self.imported and bool(self.moves) and (self.skip_bad or not self.problems)


def read_table(data: bytes, filename: str = "") -> list[tuple[int, list[str]]]:
    """The non-blank rows of a CSV or XLSX file as text cells, each with its row number as Excel
    shows it (blank and title rows counted), the header first."""
    if not data or not data.strip():
        raise RosterError("empty_file", "the file is empty")
    if len(data) > MAX_BYTES:
        raise RosterError("file_too_large", f"the file is larger than {MAX_BYTES // 1024 // 1024} MB")
    if data[:4] == b"PK\x03\x04":
        return _read_xlsx(data)
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise RosterError("old_excel", "old .xls files cannot be read: save as .xlsx or CSV")
    if b"\x00" in data[:4096]:
        raise RosterError("not_a_roster", "this is not a CSV or XLSX file")
    return _read_csv(_decode(data))


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp874")
    except UnicodeDecodeError:
        raise RosterError("bad_encoding", "text is neither UTF-8 nor Thai Windows (cp874/TIS-620)") from None


def _read_csv(text: str) -> list[tuple[int, list[str]]]:
    sample = text[:8192]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    numbered = enumerate(csv.reader(io.StringIO(text), dialect), 1)  # a blank line is a record too
    return [(n, r) for n, r in numbered if any(c.strip() for c in r)]


def _cell_text(value) -> str:
    """A cell as text; a whole number Excel stored as a float (812345678.0) without its '.0'."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_xlsx(data: bytes) -> list[tuple[int, list[str]]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise RosterError("bad_xlsx", f"the Excel file cannot be read ({exc.__class__.__name__})") from None
    try:
        for sheet in book.worksheets:
            rows = []
            for number, values in enumerate(sheet.iter_rows(values_only=True), 1):  # from row 1, blanks too
                if number > MAX_ROWS + 10:
                    raise RosterError("too_many_rows", f"more than {MAX_ROWS} rows")
                cells = [_cell_text(v) for v in values]
                if any(c.strip() for c in cells):
                    rows.append((number, cells))
            if rows and _find_header(rows) is not None:
                return rows
    finally:
        book.close()
    raise RosterError("no_roster_sheet", "no sheet has a header row with name columns (ชื่อ, นามสกุล)")


def _find_header(rows: list[tuple[int, list[str]]]) -> tuple[int, list[str | None]] | None:
    """The header row's index (among the first ten rows with text) and the field of each column."""
    for index, (_, row) in enumerate(rows[:10]):
        fields = [_HEADER_INDEX.get(_header_key(c)) for c in row]
        if ("first_name" in fields and "last_name" in fields) or "full_name" in fields:
            return index, fields
    return None


def parse_rows(rows: list[tuple[int, list[str]]]) -> list[tuple[int, dict]]:
    """(row number as Excel shows it, raw fields) for each data row."""
    found = _find_header(rows)
    if found is None:
        raise RosterError("no_header", "no header row with name columns (ชื่อ, นามสกุล / first name, last name)")
    header_index, fields = found
    if len(rows) - header_index - 1 > MAX_ROWS:
        raise RosterError("too_many_rows", f"more than {MAX_ROWS} rows")
    parsed = []
    for number, row in rows[header_index + 1:]:
        raw = {f: row[i] for i, f in enumerate(fields) if f and f != "ignore" and i < len(row)}
        if "full_name" in raw:
            title, rest = split_title(raw.pop("full_name"))
            first, _, last = rest.partition(" ")
            raw = {"title": raw.get("title") or title, "first_name": first, "last_name": last, **{
                k: v for k, v in raw.items() if k not in ("title", "first_name", "last_name")}}
        parsed.append((number, raw))
    return parsed


def source_key(fields: dict) -> str:
    """How a re-imported row finds its person: the national ID if given, else the name."""
    if fields.get("nid_hash"):
        return "nid:" + fields["nid_hash"]
    return "name:" + f"{fields['first_name']} {fields['last_name']}".lower()


def _name_of(raw: dict) -> str:
    return " ".join(clean_text(raw.get(k)) for k in ("title", "first_name", "last_name") if clean_text(raw.get(k)))


def _shown(field: str | None, raw: dict) -> str:
    """The bad value as the coordinator typed it; of a national ID only the last four digits."""
    value = clean_text(raw.get(field)) if field else ""
    return "•" * 9 + value[-4:] if field == "national_id" and len(value) > 4 else value


def repair_rows(parsed) -> tuple[list[tuple[int, dict]], list[Repair]]:
    """Puts right what a spreadsheet did to good data: a phone kept as a number lost its leading 0."""
    out, repairs = [], []
    for number, raw in parsed:
        phone = clean_text(raw.get("phone"))
        fixed = repair_phone(phone)
        if fixed != phone:
            repairs.append(Repair(number, _name_of(raw), phone, fixed))
            raw = {**raw, "phone": fixed}
        out.append((number, raw))
    return out, repairs


def validate_rows(parsed) -> tuple[list[tuple[int, dict]], list[RowProblem]]:
    """Validated fields per row, and a problem for each bad or duplicate row."""
    good, problems, seen = [], [], {}
    for number, raw in parsed:
        try:
            fields = participant_fields(raw)
        except PeopleError as exc:
            problems.append(RowProblem(number, exc.reason, str(exc), _name_of(raw), exc.field, _shown(exc.field, raw)))
            continue
        key = source_key(fields)
        if key in seen:
            problems.append(RowProblem(number, "duplicate", f"same person as row {seen[key]}", _name_of(raw),
                                       same_as=seen[key]))
            continue
        seen[key] = number
        good.append((number, ValidFields({**fields, "source_key": key})))
    return good, problems


def import_roster(db, data: bytes, program: dict, cohort: dict, filename: str = "",
                  skip_bad: bool = False, progress=None, allow_moves: bool = True,
                  by: str | None = None) -> ImportResult:
    """Imports a roster file into a cohort; see the module docstring for the rules. `by` (who
    imported it) is kept with each new person, as how their data came in.

    People of the file already in another cohort of the program move to this one; `result.moves`
    names them. With `allow_moves=False` such a file imports nothing until asked again with it.
    """
    parsed, repairs = repair_rows(parse_rows(read_table(data, filename)))
    good, problems = validate_rows(parsed)
    result = ImportResult(problems=problems, repairs=repairs, skip_bad=skip_bad, good=len(good))
    existing = {p["source_key"]: p for p in db.query(
        "select * from participants where program_id = ? and source_key is not null", [program["id"]])}
    result.moves = _moves(db, good, existing, cohort)
    if (problems and not skip_bad) or (result.moves and not allow_moves):
        return result
    with transaction(db):
        for done, (_, fields) in enumerate(good, 1):
            _upsert(db, existing.get(fields["source_key"]), fields, cohort, result, by)
            if progress:
                progress(done, len(good))
    result.imported = True
    log.info("roster import", extra={"act": "import", "cohort_id": cohort["id"], "added": result.added,
                                      "updated": result.updated, "unchanged": result.unchanged})
    return result


def _moves(db, good, existing: dict, cohort: dict) -> list[Move]:
    numbers = {c["id"]: c["number"] for c in db.query("select id, number from cohorts where program_id = ?",
                                                         [cohort["program_id"]])}
    moves = []
    for row, fields in good:
        person = existing.get(fields["source_key"])
        if person and person["cohort_id"] != cohort["id"]:
            moves.append(Move(row, f"{fields['first_name']} {fields['last_name']}", numbers.get(person["cohort_id"])))
    return moves


def _upsert(db, person: dict | None, fields: dict, cohort: dict, result: ImportResult, by: str | None) -> None:
    if person is None:
        register_participant(db, cohort, fields, via="roster", consent=consent_fields("roster", by=by))
        result.added += 1
    elif update_participant(db, person, {**fields, "cohort_id": cohort["id"]}):
        result.updated += 1
    else:
        result.unchanged += 1


class HeldRosters:
    """Roster uploads waiting for a coordinator's yes (import the good rows, or move people between
    cohorts), so that the file need not be chosen again.

    Held as private files (0600) in the data folder for an hour, for one cohort, taken once by
    their random token.
    """

    FOLDER = "pending-rosters"
    LIFETIME_SECONDS = 3600

    @dataclass
    class Held:
        data: bytes
        filename: str
        skip_bad: bool

    @classmethod
    def hold(cls, data_dir, data: bytes, filename: str, skip_bad: bool, cohort_id: str = "") -> str:
        """Keeps an upload for a cohort; returns the token that takes it back."""
        token = secrets.token_urlsafe(16)
        folder = Path(data_dir) / cls.FOLDER
        cls._prune(folder)
        meta = json.dumps({"filename": filename[:200], "skip_bad": skip_bad, "cohort_id": cohort_id}).encode()
        write_atomically(folder / f"{token}.roster", len(meta).to_bytes(4, "big") + meta + data)
        return token

    @classmethod
    def take(cls, data_dir, token: str, cohort_id: str = "") -> "HeldRosters.Held | None":
        """The upload held under `token` for this cohort, removed as it is taken; None if unknown,
        expired or held for another cohort."""
        if not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", token or ""):
            return None
        path = Path(data_dir) / cls.FOLDER / f"{token}.roster"
        cls._prune(path.parent)
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        size = int.from_bytes(raw[:4], "big")
        meta = json.loads(raw[4:4 + size])
        if meta.get("cohort_id", "") != cohort_id:
            return None
        path.unlink(missing_ok=True)
        return cls.Held(raw[4 + size:], meta["filename"], bool(meta["skip_bad"]))

    @classmethod
    def _prune(cls, folder: Path) -> None:
        if not folder.is_dir():
            return
        for old in folder.glob("*.roster"):
            if time.time() - old.stat().st_mtime > cls.LIFETIME_SECONDS:
                old.unlink(missing_ok=True)
