"""Reports as tables, and tables as CSV (UTF-8 with BOM, for Thai Excel) or XLSX (openpyxl).

Text that a spreadsheet would run as a formula (it starts with = + - @, a tab or a carriage
return) is written as text: in CSV behind a leading apostrophe, in XLSX as a string cell.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal

from kiosk.reports import attendance as att
from kiosk.reports.rows import Dataset, session_label  # noqa: F401  (session_label: used here and re-exported)
from kiosk.thai import thai_date

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MARK_TEXT = {"door": "✓", "paper": "ก", None: "", "": "·"}  # ก = กระดาษ (signed on paper)
SLOT_TH = {"day": "ทั้งวัน", "morning": "เช้า", "afternoon": "บ่าย"}
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


def report_tables(data: Dataset) -> list[Table]:
    """The attendance report: totals, per session, per day, per role, per area, per target."""
    t = att.totals(data)
    level = "district" if len({p.get("province_code") for p in data.active}) <= 1 else "province"
    tables = [
        Table("สรุป", ["รายการ", "จำนวน"], [
            ["ผู้ลงทะเบียน", t["registered"]], ["ผู้มาอย่างน้อยหนึ่งช่วง", t["attended"]],
            ["ผู้มาครบทุกช่วง", t["complete"]], ["จำนวนช่วงการอบรม", t["sessions"]],
            ["การลงชื่อทั้งหมด (คน-ช่วง)", t["marks"]], ["ลงชื่อบนกระดาษ", t["paper"]],
            ["ร้อยละของที่ควรมา", _pct(t["percent"])]]),
        Table("รายช่วง", ["รุ่น", "วัน", "ช่วง", "มา", "สแกนที่ประตู", "ลงชื่อกระดาษ", "คาดไว้", "ร้อยละ"],
              [[r["cohort"], thai_date(r["day"]), SLOT_TH.get(r["slot"], r["slot"]), r["present"], r["door"], r["paper"], r["expected"],
                _pct(r["percent"])] for r in att.by_session(data)]),
        Table("รายวัน", ["รุ่น", "วัน", "มา", "คาดไว้", "ร้อยละ"],
              [[r["cohort"], thai_date(r["day"]), r["present"], r["expected"], _pct(r["percent"])]
               for r in att.by_day(data)]),
        Table("ตามบทบาท", ["บทบาท", "ลงทะเบียน", "มา", "มาครบ", "เป้าหมาย", "ร้อยละ"],
              [[r["role_name"], r["registered"], r["attended"], r["complete"], r["target"] or "", _pct(r["percent"])]
               for r in att.by_role(data)]),
        Table("ตามพื้นที่", ["พื้นที่", "ลงทะเบียน", "มา", "มาครบ", "เป้าหมาย", "ร้อยละ"],
              [[r["area"], r["registered"], r["attended"], r["complete"], r["target"] or "", _pct(r["percent"])]
               for r in att.by_area(data, level)]),
        Table("เทียบเป้าหมาย", ["รุ่น", "บทบาท", "พื้นที่", "เป้าหมาย", "มา", "ร้อยละ"],
              [[r["cohort"] or "ทั้งโครงการ", ROLE_TH.get(r.get("role"), "ทุกบทบาท"), r["area"] or "ทุกพื้นที่",
                r["expected"], r["attended"], _pct(r["percent"])] for r in att.against_targets(data)]),
    ]
    return tables


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
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


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
