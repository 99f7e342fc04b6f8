"""The daily signature sheet (ใบลงลายมือชื่อ) of one session, A4 portrait.

Rows are grouped by area in Thai order (districts when everyone shares a province, else
provinces), then speakers and staff; each group ends with its total and the sheet with the
overall total. A row has its number, title and name, position, organization, the check-in time
for people already scanned, a box to sign, and a small QR of a sheet-row code
(`kiosk.badges.codes.paper_row_code`): scanned back with "signed sheet" chosen it records a *paper*
check-in for that person and that session, and nothing else (it holds no badge code). National IDs and phone numbers are never printed. The last page is blank
rows for walk-ins; `blank=True` prints only those.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kiosk.badges.codes import paper_row_code
from kiosk.documents.layout import FILL, MUTED, RULE, draw_qr, local_time, new_document, row_qr_matrix, text
from kiosk.reports.rows import Dataset, area_name, display_name, group_level
from kiosk.thai import thai_date

PAGE_W, PAGE_H = 210.0, 297.0
LEFT, TOP, BOTTOM = 10.0, 10.0, 12.0
HEADER_H, TABLE_HEAD_H = 27.0, 8.0
ROW_H, GROUP_H, TOTAL_H = 13.0, 7.0, 7.0
QR_SIZE = 11.0
# (title, width mm) of the columns; 190 mm between the margins
COLUMNS = (("ที่", 9.0), ("QR", 14.0), ("ชื่อ - สกุล", 50.0), ("ตำแหน่ง", 33.0), ("หน่วยงาน", 36.0),
           ("เวลามา", 16.0), ("ลายมือชื่อ", 32.0))
WALK_IN_ROWS = 17
SLOT_TH = {"day": "", "morning": "ช่วงเช้า", "afternoon": "ช่วงบ่าย"}
ROLE_GROUPS = {"speaker": "วิทยากร", "staff": "เจ้าหน้าที่", "observer": "ผู้สังเกตการณ์"}


@dataclass
class Row:
    kind: str          # "group", "person", "total", "grand", "blank"
    label: str = ""
    person: dict | None = None
    number: int = 0
    time: str = ""
    code: str = ""

    @property
    def height(self) -> float:
        return ROW_H if self.kind in ("person", "blank") else (GROUP_H if self.kind == "group" else TOTAL_H)


def _group_label(person: dict, level: str) -> str:
    if person.get("role") != "participant":
        return ROLE_GROUPS.get(person.get("role"), person.get("role") or "")
    return area_name(person.get(f"{level}_code")) or "ไม่ระบุพื้นที่"


def sheet_rows(data: Dataset, session: dict, key: bytes | None) -> list[Row]:
    """The rows of a session's sheet in print order, with group and overall totals."""
    people = [p for p in data.active if p.get("cohort_id") == session["cohort_id"]]
    level = group_level(people)
    rows, current, in_group, came_group, came_all = [], None, 0, 0, 0
    for number, p in enumerate(people, 1):
        label = _group_label(p, level)
        if label != current:
            if current is not None:
                rows.append(Row("total", f"รวม{current} {in_group} คน  มาแล้ว {came_group} คน"))
            rows.append(Row("group", label))
            current, in_group, came_group = label, 0, 0
        mark = data.marks.get((p["id"], session["id"]))
        when = "" if not mark else ("ลงกระดาษ" if mark.get("via") == "paper" else local_time(mark["first_at"]))
        code = paper_row_code(data.program["id"], p["id"], session["id"], key) if key else ""
        rows.append(Row("person", person=p, number=number, time=when, code=code))
        in_group, came_group, came_all = in_group + 1, came_group + bool(mark), came_all + bool(mark)
    if current is not None:
        rows.append(Row("total", f"รวม{current} {in_group} คน  มาแล้ว {came_group} คน"))
    rows.append(Row("grand", f"รวมทั้งสิ้น {len(people)} คน  มาแล้ว {came_all} คน"))
    return rows


def paginate(rows: list[Row], blank_pages: int = 1) -> list[list[Row]]:
    """Rows cut into pages of the table's height; then `blank_pages` pages of walk-in rows."""
    room = PAGE_H - TOP - HEADER_H - TABLE_HEAD_H - BOTTOM
    pages, page, used = [], [], 0.0
    for row in rows:
        if page and used + row.height > room:
            pages.append(page)
            page, used = [], 0.0
        page.append(row)
        used += row.height
    if page:
        pages.append(page)
    for _ in range(blank_pages):
        pages.append([Row("group", "ผู้เข้าร่วมเพิ่มเติม (ไม่มีชื่อในบัญชี)")]
                     + [Row("blank", number=n) for n in range(1, WALK_IN_ROWS + 1)])
    return pages


def _header(pdf, data: Dataset, session: dict, page: int, pages: int) -> float:
    cohort = data.cohort(session["cohort_id"])
    site = next((s["name"] for s in data.sites if s["id"] == (session.get("site_id") or cohort.get("site_id"))), "")
    y = TOP
    text(pdf, LEFT, y, 190, 7, "ใบลงลายมือชื่อผู้เข้ารับการอบรม", 15, bold=True, align="C")
    text(pdf, LEFT, y + 7, 190, 6, data.program.get("title") or "", 12, align="C", smallest=8)
    when = " ".join(x for x in (f"รุ่นที่ {cohort.get('number', '')}", "วันที่ " + thai_date(session["day"]),
                                SLOT_TH.get(session.get("slot"), ""), session.get("title") or "") if x)
    text(pdf, LEFT, y + 13, 190, 6, when, 12, align="C", smallest=8)
    text(pdf, LEFT, y + 19, 190, 6, f"ณ {site}" if site else "", 11, align="C", smallest=8)
    text(pdf, LEFT, y + 19, 190, 6, f"หน้า {page}/{pages}", 9, align="R", colour=MUTED)
    return y + HEADER_H


def _table_head(pdf, y: float) -> float:
    x = LEFT
    pdf.set_fill_color(*FILL)
    pdf.rect(LEFT, y, 190, TABLE_HEAD_H, style="F")
    for title, width in COLUMNS:
        text(pdf, x, y, width, TABLE_HEAD_H, title, 10, bold=True, align="C")
        x += width
    return y + TABLE_HEAD_H


def _grid(pdf, y: float, h: float) -> None:
    pdf.set_draw_color(*RULE)
    pdf.set_line_width(0.2)
    pdf.rect(LEFT, y, 190, h)
    x = LEFT
    for _, width in COLUMNS[:-1]:
        x += width
        pdf.line(x, y, x, y + h)


def _person(pdf, y: float, row: Row) -> None:
    _grid(pdf, y, ROW_H)
    widths = [w for _, w in COLUMNS]
    xs = [LEFT + sum(widths[:i]) for i in range(len(widths))]
    text(pdf, xs[0], y, widths[0], ROW_H, str(row.number), 10, align="C")
    if row.code:
        draw_qr(pdf, xs[1] + (widths[1] - QR_SIZE) / 2, y + (ROW_H - QR_SIZE) / 2, QR_SIZE, row_qr_matrix(row.code))
    if row.person:
        p = row.person
        text(pdf, xs[2] + 1, y, widths[2] - 1, ROW_H, display_name(p), 11, smallest=7)
        text(pdf, xs[3] + 1, y, widths[3] - 1, ROW_H, p.get("position") or "", 9, smallest=6)
        text(pdf, xs[4] + 1, y, widths[4] - 1, ROW_H, p.get("organization") or "", 9, smallest=6)
        text(pdf, xs[5], y, widths[5], ROW_H, row.time, 9, align="C", smallest=7)


def _band(pdf, y: float, row: Row) -> None:
    h = row.height
    if row.kind == "group":
        pdf.set_fill_color(*FILL)
        pdf.rect(LEFT, y, 190, h, style="F")
        text(pdf, LEFT + 2, y, 186, h, row.label, 11, bold=True)
    else:
        text(pdf, LEFT + 2, y, 186, h, row.label, 10, bold=row.kind == "grand", align="R")


def draw_sheet(pdf, data: Dataset, session: dict, pages: list[list[Row]]) -> None:
    """Draws every page: header, table head, rows."""
    for number, page in enumerate(pages, 1):
        pdf.add_page()
        y = _table_head(pdf, _header(pdf, data, session, number, len(pages)))
        for row in page:
            (_person if row.kind in ("person", "blank") else _band)(pdf, y, row)
            y += row.height


def signature_sheet_pdf(data: Dataset, session: dict, out_path: str | os.PathLike, key: bytes | None,
                        blank: bool = False, walk_in_pages: int = 1) -> Path:
    """Writes the session's signature sheet; `key` is the program's key (for row QR codes).

    `blank=True` writes only walk-in pages with empty rows (`walk_in_pages` of them).
    """
    from kiosk.badges.pdf import write_atomically

    rows = [] if blank else sheet_rows(data, session, key)
    pages = paginate(rows, walk_in_pages)
    pdf = new_document("P", "ใบลงลายมือชื่อ")
    draw_sheet(pdf, data, session, pages)
    return write_atomically(pdf, out_path)
