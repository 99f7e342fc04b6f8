"""Certificates (ประกาศนียบัตร): one A4 landscape page per eligible participant.

Each carries a QR of its certificate code (`kiosk.badges.codes.certificate_code`), which any kiosk of
the program or the central server checks offline at /verify/CODE, showing only the name, the
program and the dates. Who is eligible is `kiosk.reports.certificates.eligible`.
"""

from __future__ import annotations

import os
from pathlib import Path

from kiosk.badges.codes import certificate_code
from kiosk.documents.layout import MUTED, draw_qr, new_document, qr_matrix, text
from kiosk.reports.certificates import CertificateRule
from kiosk.reports.rows import Dataset, display_name
from kiosk.thai import thai_date, thai_date_range, thai_digits

PAGE_W, PAGE_H = 297.0, 210.0
GOLD = (150, 112, 40)
QR_SIZE = 24.0


def _frame(pdf) -> None:
    pdf.set_draw_color(*GOLD)
    pdf.set_line_width(1.2)
    pdf.rect(10, 10, PAGE_W - 20, PAGE_H - 20)
    pdf.set_line_width(0.3)
    pdf.rect(13, 13, PAGE_W - 26, PAGE_H - 26)


def _venue(data: Dataset, cohort: dict) -> str:
    return next((s["name"] for s in data.sites if s["id"] == cohort.get("site_id")), "")


def draw_certificate(pdf, data: Dataset, row: dict, rule: CertificateRule, code: str) -> None:
    """One certificate page for an eligibility row (see kiosk.reports.certificates)."""
    digits = thai_digits if rule.thai_digits else str
    cohort, program = row["cohort"], data.program
    pdf.add_page()
    _frame(pdf)
    text(pdf, 20, 24, 257, 9, program.get("organizer") or "", 16, bold=True, align="C", smallest=10)
    text(pdf, 20, 38, 257, 16, "ประกาศนียบัตร", 34, bold=True, align="C", colour=GOLD)
    text(pdf, 20, 58, 257, 9, "ให้ไว้เพื่อแสดงว่า", 16, align="C")
    text(pdf, 20, 70, 257, 16, display_name(row["participant"]), 30, bold=True, align="C", smallest=16)
    text(pdf, 20, 90, 257, 9, "ได้ผ่านการอบรม", 16, align="C")
    text(pdf, 20, 100, 257, 10, program.get("title") or "", 18, bold=True, align="C", smallest=11)
    span = thai_date_range(cohort.get("starts_on"), cohort.get("ends_on"), digits=rule.thai_digits) \
        if cohort.get("starts_on") else ""
    line = " ".join(x for x in (f"รุ่นที่ {digits(cohort.get('number', ''))}", f"ระหว่างวันที่ {span}" if span else "") if x)
    text(pdf, 20, 112, 257, 9, line, 15, align="C", smallest=10)
    venue = _venue(data, cohort)
    text(pdf, 20, 121, 257, 9, f"ณ {venue}" if venue else "", 14, align="C", smallest=9)
    if cohort.get("ends_on"):
        text(pdf, 20, 132, 257, 9, "ให้ไว้ ณ วันที่ " + thai_date(cohort["ends_on"], digits=rule.thai_digits), 14,
             align="C")
    pdf.set_draw_color(*MUTED)
    pdf.set_line_width(0.3)
    pdf.line(108, 163, 189, 163)
    text(pdf, 78, 165, 141, 8, f"({rule.signer_name})" if rule.signer_name else "", 14, align="C", smallest=9)
    text(pdf, 78, 173, 141, 8, rule.signer_position, 13, align="C", smallest=8)
    draw_qr(pdf, PAGE_W - 24 - QR_SIZE, PAGE_H - 27 - QR_SIZE, QR_SIZE, qr_matrix(rule.qr_text(code)))
    text(pdf, PAGE_W - 94, PAGE_H - 26, 70, 5, code, 7, align="R", colour=MUTED)


def certificates_pdf(data: Dataset, rows: list[dict], rule: CertificateRule, key: bytes,
                     out_path: str | os.PathLike) -> Path:
    """Writes one certificate per eligibility row in `rows` (the eligible ones)."""
    from kiosk.badges.pdf import write_atomically

    pdf = new_document("L", "ประกาศนียบัตร")
    for row in rows:
        draw_certificate(pdf, data, row, rule, certificate_code(data.program["id"], row["id"], key))
    if not rows:
        pdf.add_page()
        text(pdf, 20, 90, 257, 12, "ไม่มีผู้มีสิทธิ์ได้รับประกาศนียบัตร", 18, align="C")
    return write_atomically(pdf, out_path)
