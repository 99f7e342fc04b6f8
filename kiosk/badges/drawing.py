"""Badge images: one layout in millimetres, drawn as PNG here and as PDF in documents.py.

A badge dict has the keys: code, title, first_name, last_name, role
(participant | speaker | staff | observer), position, organization, area,
cohort, program_title. `badge_layout` turns it into drawing operations
(`Text`, `Box`, `QR`); each backend only knows how to draw those and how wide
a string is in its own font machinery, so the PNG and the PDF badge match.

Thai is shaped only by Pillow's Raqm layout; without it the tone marks above
vowels vanish silently, so `require_raqm` refuses to draw instead.
"""

from __future__ import annotations

import functools
import io
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import qrcode
from fontpkg_sarabun import ROOT as _SARABUN_ROOT
from PIL import Image, ImageDraw, ImageFont, features
from qrcode.util import MODE_ALPHA_NUM, QRData

from kiosk.errors import KioskError
from kiosk.paths import write_atomically
from kiosk.thai import ROLE_NAMES_TH, full_name

FONT_REGULAR = Path(_SARABUN_ROOT) / "files" / "Sarabun-Regular.ttf"
FONT_BOLD = Path(_SARABUN_ROOT) / "files" / "Sarabun-Bold.ttf"

BADGE_W = 90.0  # mm
BADGE_H = 64.0  # mm
PNG_DPI = 300

ROLE_COLOURS = {
    "participant": (31, 95, 191),  # blue
    "speaker": (107, 47, 163),  # purple
    "staff": (30, 123, 60),  # green
    "observer": (107, 112, 117),  # grey
}
INK = (33, 37, 41)
MUTED = (90, 96, 102)
WHITE = (255, 255, 255)

_PAD = 4.0
_QR_SIZE = 26.0
_QR_X = BADGE_W - _PAD - _QR_SIZE
_QR_Y = 14.0
_LEFT_W = _QR_X - 5.0 - _PAD  # 4 QR modules of quiet zone beside the name
_BAND_H = 12.0
_PT = 25.4 / 72  # mm per point
_SAFE_NAME = re.compile(r"[A-Z0-9]{1,64}")


class RenderError(KioskError):
    """Badges cannot be drawn correctly on this machine."""


@dataclass(frozen=True)
class Text:
    """One line of text; `baseline` in mm from the badge top, `size` in points."""

    x: float
    baseline: float
    width: float
    text: str
    size: float
    bold: bool = False
    colour: tuple[int, int, int] = INK
    align: str = "L"  # "L" or "C" within `width`


@dataclass(frozen=True)
class Box:
    """A filled rectangle, in mm."""

    x: float
    y: float
    w: float
    h: float
    colour: tuple[int, int, int]


@dataclass(frozen=True)
class QR:
    """A QR symbol: `matrix` rows of dark (True) modules, drawn `size` mm square."""

    x: float
    y: float
    size: float
    matrix: list[list[bool]]


# measure(text, bold) -> width in mm of `text` at 1 pt.
Measure = Callable[[str, bool], float]


def require_raqm() -> None:
    """Raise `RenderError` unless Pillow can shape Thai (Raqm layout with libfribidi)."""
    if not features.check("raqm"):
        raise RenderError(
            "no_text_shaping",
            "Pillow cannot shape Thai text: its Raqm layout is unavailable. "
            "Install the system library libfribidi (Debian/Ubuntu: "
            "apt-get install libfribidi0) and restart."
        )


def role_of(badge: dict) -> str:
    """The badge's role, or ValueError for a role we have no colour for."""
    role = badge["role"]
    if role not in ROLE_COLOURS:
        raise ValueError(f"unknown role {role!r}")
    return role


def display_code(code: str) -> str:
    """The code in groups of four, for people to read (normalize_code drops the spaces)."""
    return " ".join(code[i : i + 4] for i in range(0, len(code), 4))


def qr_matrix(code: str, mask: int | None = None) -> list[list[bool]]:
    """The QR modules for `code`: alphanumeric mode, error correction M, no quiet zone.

    `mask` (0-7) skips the search for the best mask pattern, which costs most of the time: a
    QR shown on a screen, at once, reads as well with any mask.
    """
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0, mask_pattern=mask)
    qr.add_data(QRData(code, mode=MODE_ALPHA_NUM))
    qr.make(fit=True)
    return qr.get_matrix()


def _fit(measure: Measure, text: str, bold: bool, width: float, size: float, smallest: float):
    """(text, size): the largest size <= `size` at which `text` fits `width`;
    at `smallest` still too wide, the text is cut and ends with an ellipsis."""
    unit = measure(text, bold)
    if unit * size <= width:
        return text, size
    if unit * smallest <= width:
        return text, width / unit
    while len(text) > 1 and measure(text + "…", bold) * smallest > width:
        text = text[:-1]
    return text.rstrip() + "…", smallest


def _line(measure: Measure, x, baseline, width, text, size, smallest, bold=False, colour=INK, align="L"):
    text, size = _fit(measure, text, bold, width, size, smallest)
    return Text(x, baseline, width, text, size, bold, colour, align)


def _name_lines(badge: dict, measure: Measure, y: float) -> tuple[list[Text], float]:
    """The name on one line if it stays large, else title+first name over last name."""
    name = full_name(badge)
    one_line_size = _LEFT_W / max(measure(name, True), 1e-6)
    if one_line_size >= 13 or not badge["last_name"]:
        size = min(one_line_size, 18)
        baseline = y + 1.2 * size * _PT  # room for stacked marks (ที่, ชื่น) under the rule
        return [_line(measure, _PAD, baseline, _LEFT_W, name, size, 9, True)], baseline + 0.5 * size * _PT
    first = full_name({**badge, "last_name": ""})
    size = min(15.0, _LEFT_W / max(measure(first, True), measure(badge["last_name"], True), 1e-6))
    size = max(size, 9.0)
    b1 = y + 1.2 * size * _PT  # room for stacked marks (ที่, ชื่น) under the rule
    b2 = b1 + 1.35 * size * _PT
    lines = [
        _line(measure, _PAD, b1, _LEFT_W, first, size, 9, True),
        _line(measure, _PAD, b2, _LEFT_W, badge["last_name"], size, 9, True),
    ]
    return lines, b2 + 0.5 * size * _PT


def _details(badge: dict, measure: Measure, y: float, colour) -> list[Text]:
    rows = [
        (badge.get("position") or "", 9.5, False, INK),
        (badge.get("organization") or "", 9.5, False, INK),
        (badge.get("area") or "", 9.0, False, MUTED),
        (badge.get("cohort") or "", 10.5, True, colour),
    ]
    ops, baseline = [], y
    for text, size, bold, ink in rows:
        if not text:
            continue
        baseline += 1.45 * size * _PT
        ops.append(_line(measure, _PAD, baseline, _LEFT_W, text, size, 7, bold, ink))
    return ops


def badge_layout(badge: dict, measure: Measure, matrix: list[list[bool]] | None = None) -> list:
    """Drawing operations (Box, Text, QR) for one badge, in mm from its top left corner."""
    role = role_of(badge)
    colour = ROLE_COLOURS[role]
    inner = BADGE_W - 2 * _PAD
    ops: list = [
        _line(measure, _PAD, 8.2, inner, badge.get("program_title") or "", 9, 6.5, True, MUTED),
        Box(_PAD, 10.6, inner, 0.5, colour),
    ]
    names, y = _name_lines(badge, measure, 12.3)
    ops += names
    ops += _details(badge, measure, y, colour)
    ops.append(QR(_QR_X, _QR_Y, _QR_SIZE, matrix or qr_matrix(badge["code"])))
    ops.append(_line(measure, _QR_X, _QR_Y + _QR_SIZE + 3.3, _QR_SIZE, display_code(badge["code"]), 7, 5, False, INK, "C"))
    band_y = BADGE_H - _BAND_H
    ops.append(Box(0, band_y, BADGE_W, _BAND_H, colour))
    ops.append(_line(measure, _PAD, band_y + 8.2, inner, ROLE_NAMES_TH[role], 17, 10, True, WHITE, "C"))
    return ops


# --- PNG backend -------------------------------------------------------------

_PX = PNG_DPI / 25.4  # pixels per mm


@functools.lru_cache(maxsize=64)
def _font(bold: bool, px: int) -> ImageFont.FreeTypeFont:
    path = FONT_BOLD if bold else FONT_REGULAR
    return ImageFont.truetype(str(path), px, layout_engine=ImageFont.Layout.RAQM)


def _pillow_measure(text: str, bold: bool) -> float:
    return _font(bold, 200).getlength(text) / 200 * _PT


def _draw_text(draw: ImageDraw.ImageDraw, op: Text) -> None:
    font = _font(op.bold, max(1, round(op.size * _PT * _PX)))
    x = op.x * _PX
    if op.align == "C":
        x += (op.width * _PX - font.getlength(op.text)) / 2
    draw.text((x, op.baseline * _PX), op.text, font=font, fill=op.colour, anchor="ls")


def _draw_qr(draw: ImageDraw.ImageDraw, op: QR) -> None:
    module = op.size * _PX / len(op.matrix)
    for r, row in enumerate(op.matrix):
        for c, dark in enumerate(row):
            if dark:
                x0, y0 = op.x * _PX + c * module, op.y * _PX + r * module
                draw.rectangle(
                    [round(x0), round(y0), round(x0 + module) - 1, round(y0 + module) - 1], fill=0
                )


def badge_png(badge: dict) -> Image.Image:
    """One badge as an RGB image at 300 dpi (90 x 64 mm)."""
    require_raqm()
    image = Image.new("RGB", (round(BADGE_W * _PX), round(BADGE_H * _PX)), WHITE)
    draw = ImageDraw.Draw(image)
    for op in badge_layout(badge, _pillow_measure):
        if isinstance(op, Box):
            draw.rectangle(
                [op.x * _PX, op.y * _PX, (op.x + op.w) * _PX - 1, (op.y + op.h) * _PX - 1],
                fill=op.colour,
            )
        elif isinstance(op, Text):
            _draw_text(draw, op)
        else:
            _draw_qr(draw, op)
    return image


def write_badge_pngs(badges: Iterable[dict], out_dir: str | os.PathLike) -> list[Path]:
    """Write each badge as `<code>.png` in `out_dir` (created 0700 if missing), atomically, 0600."""
    out = Path(out_dir)
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths = []
    for badge in badges:
        if not _SAFE_NAME.fullmatch(badge["code"]):  # it becomes a file name
            raise ValueError(f"not a badge code: {badge['code']!r}")
        buffer = io.BytesIO()
        badge_png(badge).save(buffer, format="PNG", dpi=(PNG_DPI, PNG_DPI))
        paths.append(write_atomically(out / f"{badge['code']}.png", buffer.getvalue()))
    return paths
