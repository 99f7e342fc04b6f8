"""What every document shares: the A4 page with Sarabun and Thai shaping, fitted text, row QRs."""

from __future__ import annotations

import functools

import qrcode
from fpdf import FPDF
from qrcode.util import MODE_ALPHA_NUM, QRData

from kiosk.badges.drawing import FONT_BOLD, FONT_REGULAR
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
        value, size = _fitted(pdf, value, size, bold, w, smallest)
        pdf.set_font_size(size)
    pdf.set_text_color(*colour)
    pdf.set_xy(x, y)
    pdf.cell(w, h, value, align=align)


# (text, size, bold, width, smallest) -> (text, size): names, positions and offices repeat on
# every sheet, and measuring shaped text costs as much as drawing it.
_FIT_CACHE: dict[tuple, tuple[str, float]] = {}


def _fitted(pdf: FPDF, value: str, size: float, bold: bool, w: float, smallest: float) -> tuple[str, float]:
    key = (value, size, bold, w, smallest)
    found = _FIT_CACHE.get(key)
    if found is None:
        width = pdf.get_string_width(value)
        if width > w - 1:
            size = max(smallest, size * (w - 1) / width)
            pdf.set_font_size(size)
            while len(value) > 1 and pdf.get_string_width(value) > w - 1:
                value = value[:-2] + "…"
        found = _FIT_CACHE[key] = (value, size)
        if len(_FIT_CACHE) > 50_000:
            _FIT_CACHE.clear()
    return found


@functools.lru_cache(maxsize=16)
def _qr_version(length: int) -> int:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    qr.add_data(QRData("A" * length, mode=MODE_ALPHA_NUM))
    qr.make(fit=True)
    return qr.version


def row_qr_matrix(code: str) -> list[list[bool]]:
    """A small QR (alphanumeric, level M, no quiet zone) with a fixed mask and the version known
    from the code's length: choosing them costs ten times the rest; a scanner reads any mask."""
    qr = qrcode.QRCode(version=_qr_version(len(code)), error_correction=qrcode.constants.ERROR_CORRECT_M,
                       border=0, mask_pattern=0)
    qr.add_data(QRData(code, mode=MODE_ALPHA_NUM))
    qr.make(fit=False)
    return qr.get_matrix()


def qr_matrix(text: str) -> list[list[bool]]:
    """A QR of any text (a link: byte mode, level M, no quiet zone); a bare code as `row_qr_matrix`."""
    if all(ch.isupper() or ch.isdigit() for ch in text):
        return row_qr_matrix(text)
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    qr.add_data(text)
    qr.make(fit=True)
    return qr.get_matrix()


def draw_qr(pdf: FPDF, x: float, y: float, size: float, matrix: list[list[bool]]) -> None:
    """The QR as runs of dark modules, one filled rectangle per run, written as one block of PDF
    operators (the same `re f` that FPDF.rect writes, without its per-call overhead)."""
    module = size / len(matrix)
    pdf.set_fill_color(0, 0, 0)
    k, top = pdf.k, pdf.h
    ops = []
    for r, row in enumerate(matrix):
        c = 0
        while c < len(row):
            if not row[c]:
                c += 1
                continue
            start = c
            while c < len(row) and row[c]:
                c += 1
            ops.append(f"{(x + start * module) * k:.2f} {(top - y - r * module) * k:.2f} "
                       f"{(c - start) * module * k:.2f} {-module * k:.2f} re")
    if ops:
        pdf._out(" ".join(ops) + " f")  # noqa: SLF001  (fpdf2's page-content writer)


def local_time(stamp: str | None) -> str:
    """A stored UTC time as the venue's clock writes it: '08.15 น.'."""
    return thai_time(parse_iso(stamp).astimezone(LOCAL_ZONE)) if stamp else ""
