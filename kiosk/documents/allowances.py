"""The allowance sheet (หลักฐานการจ่ายเงิน): days attended × the per-day rate, signed on receipt.

Days come from the scans (a day counts once whatever its sessions); amounts are written in
figures and in Thai words (หนึ่งพันสองร้อยบาทถ้วน); the last page ends with the totals.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

from kiosk.documents.layout import FILL, MUTED, RULE, new_document, text
from kiosk.reports.rows import Dataset
from kiosk.thai import thai_date_range

LEFT, TOP = 10.0, 10.0
HEADER_H, HEAD_H, ROW_H, TOTAL_H = 27.0, 8.0, 11.0, 16.0
ROWS_PER_PAGE = 19
COLUMNS = (("ที่", 9.0), ("ชื่อ - สกุล", 50.0), ("วัน", 11.0), ("อัตรา/วัน", 18.0), ("จำนวนเงิน", 22.0),
           ("จำนวนเงิน (ตัวอักษร)", 48.0), ("ลายมือชื่อผู้รับเงิน", 32.0))


def money(amount) -> str:
    """1200 → '1,200.00'."""
    return f"{Decimal(amount):,.2f}"


def _header(pdf, data: Dataset, page: int, pages: int, rate) -> float:
    cohort = data.cohorts[0] if len(data.cohorts) == 1 else {}
    text(pdf, LEFT, TOP, 190, 7, "หลักฐานการจ่ายเงินค่าเบี้ยเลี้ยงผู้เข้ารับการอบรม", 15, bold=True, align="C")
    text(pdf, LEFT, TOP + 7, 190, 6, data.program.get("title") or "", 12, align="C", smallest=8)
    span = thai_date_range(cohort["starts_on"], cohort.get("ends_on")) if cohort.get("starts_on") else ""
    line = " ".join(x for x in (f"รุ่นที่ {cohort['number']}" if cohort else "", f"วันที่ {span}" if span else "",
                                f"อัตราวันละ {money(rate)} บาท") if x)
    text(pdf, LEFT, TOP + 13, 190, 6, line, 12, align="C", smallest=8)
    text(pdf, LEFT, TOP + 19, 190, 6, f"หน้า {page}/{pages}", 9, align="R", colour=MUTED)
    y = TOP + HEADER_H
    pdf.set_fill_color(*FILL)
    pdf.rect(LEFT, y, 190, HEAD_H, style="F")
    x = LEFT
    for title, width in COLUMNS:
        text(pdf, x, y, width, HEAD_H, title, 10, bold=True, align="C", smallest=7)
        x += width
    return y + HEAD_H


def _row(pdf, y: float, cells: list[str], bold: bool = False, h: float = ROW_H) -> None:
    pdf.set_draw_color(*RULE)
    pdf.set_line_width(0.2)
    pdf.rect(LEFT, y, 190, h)
    x = LEFT
    aligns = ("C", "L", "C", "R", "R", "L", "L")
    for (_, width), value, align in zip(COLUMNS, cells, aligns):
        text(pdf, x + 1, y, width - 2, h, value, 10, bold=bold, align=align, smallest=6)
        x += width
        pdf.line(x, y, x, y + h)


def allowance_pdf(data: Dataset, sheet: dict, out_path: str | os.PathLike) -> Path:
    """Writes the allowance sheet for `sheet` = kiosk.reports.certificates.allowance_rows(...)."""
    from kiosk.badges.pdf import write_atomically

    rows = sheet["rows"]
    chunks = [rows[i:i + ROWS_PER_PAGE] for i in range(0, len(rows), ROWS_PER_PAGE)] or [[]]
    pdf = new_document("P", "หลักฐานการจ่ายเงิน")
    number = 0
    for page, chunk in enumerate(chunks, 1):
        pdf.add_page()
        y = _header(pdf, data, page, len(chunks), sheet["rate"])
        for r in chunk:
            number += 1
            _row(pdf, y, [str(number), r["name"], str(r["days"]), money(r["rate"]), money(r["amount"]), r["words"], ""])
            y += ROW_H
    _row(pdf, y, ["", f"รวม {len(rows)} คน", str(sheet["days"]), "", money(sheet["total"]), sheet["total_words"], ""],
         bold=True, h=TOTAL_H)
    text(pdf, LEFT, y + TOTAL_H + 14, 190, 7, "ลงชื่อ ................................................ ผู้จ่ายเงิน",
         12, align="R")
    return write_atomically(pdf, out_path)
