"""Reports as tables, and tables as CSV (UTF-8 with BOM, for Thai Excel) or XLSX (openpyxl).

Text that a spreadsheet would run as a formula (it starts with = + - @, a tab or a carriage
return) is written as text: in CSV behind a leading apostrophe, in XLSX as a string cell.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

from kiosk.clock import LOCAL_ZONE, parse_iso
from kiosk.reports import attendance as att
from kiosk.reports.rows import Dataset, session_label  # noqa: F401  (session_label: used here and re-exported)
from kiosk.thai import thai_date

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# ก = กระดาษ (signed on paper), ป = ผู้ประสานงาน (marked by hand); a session still to come is left blank
MARK_TEXT = {"door": "✓", "paper": "ก", "manual": "ป", None: "", "": "·", "later": ""}
SLOT_TH = {"day": "ทั้งวัน", "morning": "เช้า", "afternoon": "บ่าย"}
CORRECTION_TH = {"checked_in": "บันทึกว่ามา", "undone": "ยกเลิกการเช็คอิน"}
ROLE_TH = {"participant": "ผู้เข้าอบรม", "speaker": "วิทยากร", "staff": "เจ้าหน้าที่", "observer": "ผู้สังเกตการณ์"}


@dataclass
class Table:
    """One titled table: a sheet in XLSX, a block in CSV."""

    title: str
    headers: list[str]
    rows: list[list]


def is_formula_like(value) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_START)


def _pct(value) -> float | str:
    return "" if value is None else value


# Column heads, the same words the report page shows in Thai (tests/test_reports_web.py compares them).
SESSION_HEADS = ["รุ่นที่", "วันที่", "ช่วง", "เป้าหมายของรุ่น", "ผู้ลงทะเบียน", "มา", "สแกนที่ประตู", "ลงชื่อกระดาษ",
                 "บันทึกโดยผู้ประสานงาน", "ร้อยละของผู้ลงทะเบียน"]
DAY_HEADS = ["รุ่นที่", "วันที่", "เป้าหมายของรุ่น", "ผู้ลงทะเบียน", "มา", "ร้อยละของผู้ลงทะเบียน"]
GROUP_HEADS = ["เป้าหมาย", "ผู้ลงทะเบียน", "มาอย่างน้อยหนึ่งช่วง", "มาครบทุกช่วง", "ร้อยละของเป้าหมาย",
               "ร้อยละของผู้ลงทะเบียน"]
TARGET_HEADS = ["รุ่นที่", "ประเภท", "พื้นที่", "เป้าหมาย", "มาอย่างน้อยหนึ่งช่วง", "ร้อยละของเป้าหมาย"]
CORRECTION_HEADS = ["รุ่นที่", "ชื่อ", "ช่วงการอบรม", "การแก้ไข", "โดย", "เวลา", "เหตุผล"]
LEVEL_TH = {"province": "จังหวัด", "district": "อำเภอหรือเขต", "subdistrict": "ตำบลหรือแขวง"}


def _count(value):
    return "" if value is None else value


def _group_row(r: dict) -> list:
    return [_count(r["target"]), r["registered"], r["attended"], r["complete"], _pct(r["percent"]),
            _pct(r["percent_registered"])]


def report_tables(data: Dataset, level: str | None = None) -> list[Table]:
    """The attendance report: totals, per session, per day, per role, per area (at `level`, default
    the report's own), per target, and the corrections made by hand."""
    t = att.totals(data)
    level = level or att.default_level(data)
    return [
        Table("สรุป", ["รายการ", "จำนวน"], [
            ["ผู้ลงทะเบียน", t["registered"]], ["ผู้มาอย่างน้อยหนึ่งช่วง", t["attended"]],
            ["ผู้มาครบทุกช่วง", t["complete"]], ["จำนวนช่วงการอบรม", t["sessions"]],
            ["การลงชื่อทั้งหมด (คน-ช่วง)", t["marks"]], ["ลงชื่อบนกระดาษ", t["paper"]],
            ["บันทึกโดยผู้ประสานงาน", t["manual"]], ["ร้อยละของที่ควรมา (ช่วงที่ผ่านมาแล้ว)", _pct(t["percent"])]]),
        Table("รายช่วง", SESSION_HEADS,
              [[r["cohort"], thai_date(r["day"]), SLOT_TH.get(r["slot"], r["slot"]), _count(r["target"]), r["registered"],
                r["present"], r["door"], r["paper"], r["manual"], _pct(r["percent"])] for r in att.by_session(data)]),
        Table("รายวัน", DAY_HEADS,
              [[r["cohort"], thai_date(r["day"]), _count(r["target"]), r["registered"], r["present"], _pct(r["percent"])]
               for r in att.by_day(data)]),
        Table("ตามบทบาท", ["ประเภท", *GROUP_HEADS], [[r["role_name"], *_group_row(r)] for r in att.by_role(data)]),
        Table(f"ตามพื้นที่ ({LEVEL_TH[level]})", ["พื้นที่", *GROUP_HEADS],
              [[r["label"], *_group_row(r)] for r in att.by_area(data, level)]),
        Table("เทียบเป้าหมาย", TARGET_HEADS,
              [[r["cohort"] or "ทั้งโครงการ", ROLE_TH.get(r.get("role"), "ทุกประเภท"), r["area_label"] or "ทุกพื้นที่",
                r["expected"], r["attended"], _pct(r["percent"])] for r in att.against_targets(data)]),
        Table("แก้ไขโดยผู้ประสานงาน", CORRECTION_HEADS,
              [[r["cohort"], r["name"], r["session"], CORRECTION_TH.get(r["result"], r["result"]), r.get("operator") or "",
                local_time_text(r.get("at")), r.get("note") or ""] for r in att.corrections(data)]),
    ]


def grid_table(data: Dataset) -> Table:
    """The participants × sessions grid, one row per person (✓ door, ก paper, · not their cohort)."""
    g = att.grid(data)
    headers = ["ลำดับ", "ชื่อ-สกุล", "บทบาท", "รุ่น", "จังหวัด", "อำเภอ/เขต", "ตำแหน่ง", "หน่วยงาน",
               *g["columns"], "มา (ช่วง)", "ร้อยละ"]
    rows = [[n, r["name"], ROLE_TH.get(r["role"], r["role"]), r["cohort"], r["province"], r["district"],
             r["position"], r["organization"], *[MARK_TEXT[m] for m in r["marks"]], r["attended"], _pct(r["percent"])]
            for n, r in enumerate(g["rows"], 1)]
    return Table("รายบุคคล", headers, rows)


def certificate_table(rows: list[dict]) -> Table:
    """Who earns a certificate and who does not, with the sessions they missed."""
    body = []
    for n, r in enumerate(rows, 1):
        missing = ", ".join(session_label(s) for s in r["missing"])
        body.append([n, r["name"], r["area"], r["attended"], r["sessions"], r["percent"],
                     "ได้รับ" if r["eligible"] else "ไม่ได้รับ", missing])
    return Table("ประกาศนียบัตร", ["ลำดับ", "ชื่อ-สกุล", "พื้นที่", "มา (ช่วง)", "ทั้งหมด", "ร้อยละ", "ผล",
                                  "ช่วงที่ขาด"], body)


def local_time_text(stamp: str | None) -> str:
    """A stored UTC time as venue date and time, Thai style: '7 ธ.ค. 2569 08:15'."""
    if not stamp:
        return ""
    moment = parse_iso(stamp).astimezone(LOCAL_ZONE)
    return f"{thai_date(moment.date(), short=True)} {moment:%H:%M}"


def _cell(value):
    if isinstance(value, Decimal):
        return float(value)
    return value


def to_csv(tables: list[Table]) -> bytes:
    """The tables one below another, each under its title; UTF-8 with BOM."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for index, table in enumerate(tables):
        if index:
            writer.writerow([])
        if len(tables) > 1:
            writer.writerow([table.title])
        for row in [table.headers, *table.rows]:
            writer.writerow(["'" + v if is_formula_like(v) else _cell(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(tables: list[Table]) -> bytes:
    """One sheet per table, header row bold and frozen; formula-like text kept as text."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    for table in tables:
        sheet = book.create_sheet(table.title[:31])
        sheet.append(table.headers)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for r, row in enumerate(table.rows, start=2):
            for c, value in enumerate(row, start=1):
                cell = sheet.cell(r, c, _cell(value))
                if is_formula_like(value):
                    cell.data_type = "s"  # a string cell: Excel shows it, never runs it
        sheet.freeze_panes = "A2"
        _fit_columns(sheet, [table.headers, *table.rows])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# Thai vowels and tone marks above or below a letter take no width of their own.
_ZERO_WIDTH = frozenset("\u0e31\u0e34\u0e35\u0e36\u0e37\u0e38\u0e39\u0e3a\u0e47\u0e48\u0e49\u0e4a\u0e4b\u0e4c\u0e4d\u0e4e")
MAX_WIDTH = 60


def text_width(value) -> int:
    """How many character widths a cell's text takes on screen (Thai marks counted as none)."""
    return sum(1 for ch in str(_cell(value)) if ch not in _ZERO_WIDTH and not unicodedata.combining(ch))


def _fit_columns(sheet, rows: list[list]) -> None:
    """Each column as wide as its widest cell (at most MAX_WIDTH), so Thai names are not cut off."""
    from openpyxl.utils import get_column_letter

    widths: dict[int, int] = {}
    for row in rows:
        for index, value in enumerate(row, start=1):
            widths[index] = max(widths.get(index, 0), text_width("" if value is None else value))
    for index, width in widths.items():
        # Thai letters are a little wider than Excel's width unit (the digit 0): 1.2, plus a margin
        sheet.column_dimensions[get_column_letter(index)].width = min(MAX_WIDTH, max(6, round(width * 1.2) + 2))


def export(tables: list[Table], fmt: str) -> tuple[bytes, str]:
    """(bytes, mimetype) of the tables in `fmt` ('csv' or 'xlsx')."""
    from kiosk.errors import KioskError

    if fmt == "csv":
        return to_csv(tables), "text/csv; charset=utf-8"
    if fmt == "xlsx":
        return to_xlsx(tables), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    raise KioskError("bad_report_format", field="format")


def csv_stream(tables: list[Table], rows_per_chunk: int = 500):
    """The tables as `to_csv` writes them, yielded in pieces as their rows come (rows may be a
    generator reading a database): the memory holds one piece, whatever the size."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    out.write("\ufeff")
    for index, table in enumerate(tables):
        if index:
            writer.writerow([])
        if len(tables) > 1:
            writer.writerow([table.title])
        writer.writerow(table.headers)
        for count, row in enumerate(table.rows, 1):
            writer.writerow(["'" + v if is_formula_like(v) else _cell(v) for v in row])
            if count % rows_per_chunk == 0:
                yield out.getvalue().encode("utf-8")
                out.seek(0)
                out.truncate()
    yield out.getvalue().encode("utf-8")


def write_xlsx(tables: list[Table], path) -> None:
    """The tables as XLSX at `path`, written row by row (XlsxWriter's constant memory: each row
    goes to disk as it is written). One sheet per table, header bold and frozen; text is always
    text (never a formula, a link or a number)."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False,
                                           "strings_to_urls": False, "strings_to_numbers": False})
    bold = book.add_format({"bold": True})
    for table in tables:
        sheet = book.add_worksheet(table.title[:31])
        sheet.write_row(0, 0, table.headers, bold)
        sheet.freeze_panes(1, 0)
        for r, row in enumerate(table.rows, start=1):
            sheet.write_row(r, 0, [_cell(v) if v is not None else "" for v in row])
    book.close()
