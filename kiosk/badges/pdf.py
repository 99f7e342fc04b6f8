"""Badge PDFs: A4 sheets (8 badges a page with cut marks) and one badge on A6 or A4, with fpdf2.

Thai text goes through fpdf2's text shaping (HarfBuzz): without it tone marks above vowels
vanish (ผู้ที่ → ผู้ที) and ำ collides with tone marks. The layout is the one
`kiosk.badges.drawing` computes for the PNG badge, measured with the same Sarabun font, so both look alike.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from fpdf import FPDF

from kiosk import paths
from kiosk.badges.drawing import (
    BADGE_H,
    BADGE_W,
    Box,
    Text,
    _pillow_measure,
    badge_layout,
    qr_matrix,
    require_raqm,
)
from kiosk.documents.layout import draw_qr, new_document

PAGE_W, PAGE_H = 210.0, 297.0
COLUMNS, ROWS = 2, 4
GAP_X, GAP_Y = 10.0, 6.0
MARGIN_X = (PAGE_W - COLUMNS * BADGE_W - (COLUMNS - 1) * GAP_X) / 2
MARGIN_Y = (PAGE_H - ROWS * BADGE_H - (ROWS - 1) * GAP_Y) / 2
MARK_LEN, MARK_GAP = 3.0, 1.0
_PT = 25.4 / 72
PARALLEL_FROM = 300  # badges; below this a second process costs more than it saves


def new_pdf() -> FPDF:
    """An A4 portrait document with Sarabun and Thai text shaping on (the documents' one set-up)."""
    return new_document()


def badge_cells() -> list[tuple[float, float]]:
    """Top-left corners of the badge cells on a page, row by row."""
    return [(MARGIN_X + c * (BADGE_W + GAP_X), MARGIN_Y + r * (BADGE_H + GAP_Y))
            for r in range(ROWS) for c in range(COLUMNS)]


def _cut_marks(pdf: FPDF, x: float, y: float) -> None:
    """Short hairlines just outside each corner of a badge cell."""
    pdf.set_draw_color(120, 120, 120)
    pdf.set_line_width(0.15)
    for cx, dx in ((x, -1), (x + BADGE_W, 1)):
        for cy, dy in ((y, -1), (y + BADGE_H, 1)):
            pdf.line(cx + dx * MARK_GAP, cy, cx + dx * (MARK_GAP + MARK_LEN), cy)
            pdf.line(cx, cy + dy * MARK_GAP, cx, cy + dy * (MARK_GAP + MARK_LEN))


def _draw_text(pdf: FPDF, x0: float, y0: float, op: Text) -> None:
    pdf.set_font("Sarabun", "B" if op.bold else "", op.size)
    pdf.set_text_color(*op.colour)
    size_mm = op.size * _PT
    # fpdf2 puts a cell's baseline at y + h/2 + 0.3 * font size
    pdf.set_xy(x0 + op.x, y0 + op.baseline - 0.5 * size_mm - 0.3 * size_mm)
    pdf.cell(op.width, size_mm, op.text, align=op.align)


def draw_badge(pdf: FPDF, x0: float, y0: float, badge: dict, matrix=None) -> None:
    """One badge with its top-left corner at (x0, y0) mm."""
    for op in badge_layout(badge, _pillow_measure, matrix):
        if isinstance(op, Box):
            pdf.set_fill_color(*op.colour)
            pdf.rect(x0 + op.x, y0 + op.y, op.w, op.h, style="F")
        elif isinstance(op, Text):
            _draw_text(pdf, x0, y0, op)
        else:
            draw_qr(pdf, x0 + op.x, y0 + op.y, op.size, op.matrix)


def write_atomically(pdf: FPDF, out_path: str | os.PathLike) -> Path:
    """Writes the PDF to a temporary file beside `out_path`, then renames it into place; 0600,
    like every paper with names or codes."""
    return paths.write_atomically(out_path, bytes(pdf.output()))


def badge_sheet_pdf(badges: list[dict], out_path: str | os.PathLike | None = None, progress=None) -> Path | bytes:
    """A4 sheets of badges, 8 a page with cut marks; `progress(done, total)` after each badge.

    Written to `out_path` (atomically) and its path returned, or, without a path, the PDF bytes.
    """
    from kiosk.badges.drawing import require_raqm

    require_raqm()
    pdf = new_pdf()
    pdf.set_title("Badges")
    cells = badge_cells()
    with _qr_matrices([b["code"] for b in badges]) as matrices:
        for index, (badge, matrix) in enumerate(zip(badges, matrices)):
            slot = index % len(cells)
            if slot == 0:
                pdf.add_page()
            x, y = cells[slot]
            _cut_marks(pdf, x, y)
            draw_badge(pdf, x, y, badge, matrix)
            if progress:
                progress(index + 1, len(badges))
    if not badges:
        pdf.add_page()
    return write_atomically(pdf, out_path) if out_path is not None else bytes(pdf.output())


def badge_sheet_pdf_apart(badges: list[dict]) -> bytes:
    """`badge_sheet_pdf` in memory, in a separate process at a lower priority, for a server: laying
    out 2,000 badges is seconds of Python that would otherwise hold the interpreter the door's
    threads need."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # never fork a process that serves threads
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_lower_priority) as pool:
        return pool.submit(badge_sheet_pdf, badges).result()


def _lower_priority() -> None:
    if hasattr(os, "nice"):
        os.nice(10)


@contextlib.contextmanager
def _qr_matrices(codes: list[str]):
    """The QR matrices of `codes`, in order; a big run computes them in a second process
    while this one lays out pages (choosing a QR mask costs as much as drawing a badge)."""
    if len(codes) < PARALLEL_FROM or (os.cpu_count() or 1) < 2:
        yield map(qr_matrix, codes)
        return
    with ProcessPoolExecutor(max_workers=1) as pool:
        yield pool.map(qr_matrix, codes, chunksize=64)


PAPERS = {"a6": (105.0, 148.0), "a4": (210.0, 297.0)}


def badge_pdf(card: dict, paper: str = "a6") -> bytes:
    """One badge centred on an A6 (or A4) page with cut marks, as PDF bytes: nothing is written to disk."""
    require_raqm()
    width, height = PAPERS[paper]
    pdf = new_pdf()
    pdf.set_title("Badge")
    pdf.add_page(format=(width, height))
    x, y = (width - BADGE_W) / 2, min(20.0, (height - BADGE_H) / 2)
    _cut_marks(pdf, x, y)
    draw_badge(pdf, x, y, card)
    return bytes(pdf.output())
