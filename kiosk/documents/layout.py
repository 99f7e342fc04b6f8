"""What every document shares: the A4 page with Sarabun and Thai shaping, fitted text, row QRs."""

from __future__ import annotations

import qrcode
from fpdf import FPDF
from qrcode.util import MODE_ALPHA_NUM, QRData

from kiosk.badges import FONT_BOLD, FONT_REGULAR
from kiosk.clock import LOCAL_ZONE, parse_iso
from kiosk.thai import thai_time

PT = 25.4 / 72  # mm per point
INK = (33, 37, 41)
MUTED = (90, 96, 102)
RULE = (150, 150, 150)
FILL = (235, 239, 244)


def new_document(orientation: str = "P", title: str = "") -> FPDF:
    """An A4 document with Sarabun regular and bold and Thai text shaping on (HarfBuzz)."""
    pdf = FPDF(orientation=orientation, unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.add_font("Sarabun", "", str(FONT_REGULAR))
    pdf.add_font("Sarabun", "B", str(FONT_BOLD))
    pdf.set_text_shaping(True)
    pdf.set_creator("attendance-kiosk")
    pdf.set_title(title)
    return pdf


def text(pdf: FPDF, x: float, y: float, w: float, h: float, value: str, size: float = 11, bold: bool = False,
         align: str = "L", colour=INK, smallest: float | None = None) -> None:
    """One line in a box (x, y, w, h mm), shrunk down to `smallest` pt to fit, else cut with '…'."""
    value = value or ""
    pdf.set_font("Sarabun", "B" if bold else "", size)
    if smallest and value:
        width = pdf.get_string_width(value)
        if width > w - 1:
            size = max(smallest, size * (w - 1) / width)
            pdf.set_font_size(size)
            while len(value) > 1 and pdf.get_string_width(value) > w - 1:
                value = value[:-2] + "…"
    pdf.set_text_color(*colour)
    pdf.set_xy(x, y)
    pdf.cell(w, h, value, align=align)


def row_qr_matrix(code: str) -> list[list[bool]]:
    """A small QR (alphanumeric, level M, no quiet zone) with a fixed mask: choosing the best mask
    costs ten times the rest, and a scanner reads any mask."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0, mask_pattern=0)
    qr.add_data(QRData(code, mode=MODE_ALPHA_NUM))
    qr.make(fit=True)
    return qr.get_matrix()


def draw_qr(pdf: FPDF, x: float, y: float, size: float, matrix: list[list[bool]]) -> None:
    """The QR as runs of dark modules, one rectangle per run: sharp at any zoom, and small."""
    module = size / len(matrix)
    pdf.set_fill_color(0, 0, 0)
    for r, row in enumerate(matrix):
        c = 0
        while c < len(row):
            if not row[c]:
                c += 1
                continue
            start = c
            while c < len(row) and row[c]:
                c += 1
            pdf.rect(x + start * module, y + r * module, (c - start) * module, module, style="F")


def local_time(stamp: str | None) -> str:
    """A stored UTC time as the venue's clock writes it: '08.15 น.'."""
    return thai_time(parse_iso(stamp).astimezone(LOCAL_ZONE)) if stamp else ""
