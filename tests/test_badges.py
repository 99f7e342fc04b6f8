"""Badges: every QR printed on a sheet reads back and verifies; Thai is shaped (tone marks stand above
their vowels on the PNG and the PDF badge alike) or refused."""

import functools
import subprocess

import pytest
import zxingcpp
from PIL import Image, ImageFont

from kiosk.badges import drawing as badges
from kiosk.badges.codes import make_code, verify_code
from kiosk.badges.drawing import RenderError, badge_png, require_raqm
from kiosk.badges.issuing import badge_card, cohort_cards
from kiosk.badges.pdf import badge_sheet_pdf

KEY = b"s" * 32
NAMES = [("นาย", "สกลธี", "ภัททิยกุล"), ("นางสาว", "สมหญิง", "ชื่นทรวง"), ("นาง", "อณุสรา", "ชื่นทรวง"),
         ("ว่าที่ร้อยตรี", "เกียรติศักดิ์ศรีสวัสดิ์", "ผู้ใหญ่ยิ่งเจริญวงศ์ไพบูลย์"), ("Mr.", "John", "Smith")]
ROLES = ["participant", "speaker", "staff", "observer"]


def card(i):
    title, first, last = NAMES[i % len(NAMES)]
    person = {"title": title, "first_name": first, "last_name": last, "role": ROLES[i % 4],
              "position": "ผู้ใหญ่บ้าน", "organization": "สำนักงานเขตดินแดง", "province_code": "10",
              "district_code": "1026", "subdistrict_code": "102601", "program_id": "prog"}
    return badge_card(person, make_code("prog", KEY), {"title": "รุ่นที่ 1"}, {"title": "อบรมผู้นำชุมชน"})


def decode_all(image):
    return [r.text for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode]


def test_every_qr_on_a_badge_sheet_reads_back_and_verifies(tmp_path):
    cards = [card(i) for i in range(20)]
    pdf = badge_sheet_pdf(cards, tmp_path / "sheet.pdf")
    subprocess.run(["pdftoppm", "-png", "-r", "150", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 3  # 8 + 8 + 4
    decoded = [text for page in pages for text in decode_all(Image.open(page))]
    assert sorted(decoded) == sorted(c["code"] for c in cards)
    assert all(verify_code(text, {"prog": KEY}) == "prog" for text in decoded)


def test_a_png_badge_reads_back(tmp_path):
    one = card(3)
    image = badge_png(one)
    assert image.size == (1063, 756)  # 90 x 64 mm at 300 dpi
    assert decode_all(image) == [one["code"]]


def test_badges_never_show_the_national_id_or_phone(db, event):
    db.execute("update participants set phone = '0899999999', nid_last4 = '3450'")
    for printed in cohort_cards(db, event["cohort_id"]):
        text = " ".join(str(v) for v in printed.values())
        assert "0899999999" not in text and "3450" not in text


def _rendered(tmp_path, name, shaping):
    from kiosk.badges.pdf import new_pdf, write_atomically

    pdf = new_pdf()
    if not shaping:
        pdf.set_text_shaping(False)
    pdf.add_page()
    pdf.set_font("Sarabun", "", 40)
    pdf.set_xy(10, 10)
    pdf.cell(150, 20, "ผู้ที่น้ำ")
    path = write_atomically(pdf, tmp_path / f"{name}.pdf")
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-singlefile", str(path), str(tmp_path / name)], check=True)
    return Image.open(tmp_path / f"{name}.png").convert("L")


def test_badge_pdfs_shape_thai_so_tone_marks_sit_above_the_vowels(tmp_path):
    """Shaping moves ้ and ่ up over ู and ี: the picture differs from unshaped text."""
    from PIL import ImageChops

    shaped, plain = _rendered(tmp_path, "shaped", True), _rendered(tmp_path, "plain", False)
    assert ImageChops.difference(shaped, plain).getbbox() is not None


# HarfBuzz on the Sarabun the kiosk ships, shaping ผู้ที่: (glyph name, glyph id, cluster, x advance,
# x offset, y offset), in font units (1000 an em). ้ over ผู has no upper vowel to clear and stays the
# plain mark; ่ over ี is swapped (GSUB) for the raised uni0E48.small, which sits above the vowel.
SHAPING_SAMPLE = "ผู้ที่"
SHAPED_REFERENCE = [
    ("uni0E1C", 465, 0, 622, 0, 0),        # ผ
    ("uni0E39", 769, 0, 0, 0, 0),          # ู  below
    ("uni0E49", 738, 0, 0, 0, 0),          # ้  above the consonant
    ("uni0E17", 460, 3, 657, 0, 0),        # ท
    ("uni0E35", 754, 3, 0, -10, 0),        # ี  nudged left by the mark positioning
    ("uni0E48.small", 736, 3, 0, -11, 0),  # ่  raised above ี
]


def _harfbuzz_glyphs(text: str, features: dict | None = None) -> list[tuple]:
    import uharfbuzz as hb

    from kiosk.badges.drawing import FONT_REGULAR

    font = hb.Font(hb.Face(hb.Blob.from_file_path(str(FONT_REGULAR))))
    buffer = hb.Buffer()
    buffer.add_str(text)
    buffer.guess_segment_properties()
    hb.shape(font, buffer, features or {})
    return [(font.glyph_to_string(info.codepoint), info.codepoint, info.cluster, pos.x_advance, pos.x_offset,
             pos.y_offset) for info, pos in zip(buffer.glyph_infos, buffer.glyph_positions)]


def test_harfbuzz_shapes_phu_thi_in_sarabun_to_the_reference_glyphs_and_positions():
    assert _harfbuzz_glyphs(SHAPING_SAMPLE) == SHAPED_REFERENCE
    unshaped = _harfbuzz_glyphs(SHAPING_SAMPLE, {"ccmp": False, "locl": False, "mark": False, "mkmk": False})
    assert unshaped[-1][0] == "uni0E48"  # the reference tells shaped from unshaped


# A name with five marks above its consonants: ี ่ (ที่), ั (รั), ื ่ (ชื่); two tone marks on vowels.
STACKED_NAME = {"title": "นางสาว", "first_name": "ที่รัก", "last_name": "ชื่นทรวง"}
MARKS_IN_NAME, STACKS_IN_NAME = 5, 2


def _name_marks(image: Image.Image, px_per_mm: float, badge: dict) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (left, top, right, bottom; px) of the ink blobs above the consonants in the
    name lines of `badge` as drawn in `image`: upper vowels and tone marks."""
    gray = image.convert("L")
    boxes = []
    for op in badges.badge_layout(badge, badges._pillow_measure):
        if not (isinstance(op, badges.Text) and op.bold and op.colour == badges.INK):
            continue  # not a name line
        em = op.size * badges._PT * px_per_mm
        baseline = op.baseline * px_per_mm
        region = (round(op.x * px_per_mm), round(baseline - 1.35 * em),
                  round((op.x + op.width) * px_per_mm), round(baseline - 0.64 * em))  # consonants: 586/1000
        boxes += [(region[0] + l, region[1] + t, region[0] + r, region[1] + b)
                  for l, t, r, b in _ink_blobs(gray.crop(region))]
    return boxes


def _ink_blobs(gray: Image.Image) -> list[tuple[int, int, int, int]]:
    """Bounding boxes of the 8-connected dark areas of a grayscale image."""
    width, height = gray.size
    ink = {(x, y) for y in range(height) for x in range(width) if gray.getpixel((x, y)) < 128}
    blobs = []
    while ink:
        stack = [ink.pop()]
        xs, ys = [], []
        while stack:
            x, y = stack.pop()
            xs.append(x)
            ys.append(y)
            for near in ((x + dx, y + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)):
                if near in ink:
                    ink.remove(near)
                    stack.append(near)
        if len(xs) > 3:  # not a speck of anti-aliasing
            blobs.append((min(xs), min(ys), max(xs) + 1, max(ys) + 1))
    return blobs


def _stacking(marks) -> tuple[int, int]:
    """(stacked, colliding): pairs of marks one above the other with a gap, and pairs that overlap."""
    stacked = colliding = 0
    for i, a in enumerate(marks):
        for b in marks[i + 1:]:
            if a[0] < b[2] and b[0] < a[2]:  # they share columns
                if a[3] <= b[1] or b[3] <= a[1]:
                    stacked += 1
                elif a[1] < b[3] and b[1] < a[3]:
                    colliding += 1
    return stacked, colliding


def _stacked_badge():
    return badge_card({**STACKED_NAME, "role": "participant", "program_id": "prog", "province_code": "10"},
                      make_code("prog", KEY), {"title": "รุ่นที่ 1"}, {"title": "อบรมผู้นำชุมชน"})


def test_png_badge_puts_each_tone_mark_above_its_vowel_not_on_it(monkeypatch):
    one = _stacked_badge()
    shaped = _name_marks(badge_png(one), badges._PX, one)
    assert len(shaped) == MARKS_IN_NAME and _stacking(shaped) == (STACKS_IN_NAME, 0), shaped
    # the same badge through Pillow's basic layout (no shaping): each tone mark lands on its vowel
    basic = functools.lru_cache(maxsize=64)(lambda bold, px: ImageFont.truetype(
        str(badges.FONT_BOLD if bold else badges.FONT_REGULAR), px, layout_engine=ImageFont.Layout.BASIC))
    monkeypatch.setattr(badges, "_font", basic)
    assert _stacking(_name_marks(badge_png(one), badges._PX, one))[0] == 0


def _pdf_badge_image(tmp_path, badge: dict, shaping: bool = True) -> Image.Image:
    from kiosk.badges.pdf import draw_badge, new_pdf

    pdf = new_pdf()
    if not shaping:
        pdf.set_text_shaping(False)
    pdf.add_page()
    draw_badge(pdf, 0, 0, badge)
    name = "shaped" if shaping else "plain"
    (tmp_path / f"{name}.pdf").write_bytes(pdf.output())
    subprocess.run(["pdftoppm", "-png", "-r", str(badges.PNG_DPI), "-singlefile", "-x", "0", "-y", "0",
                    "-W", str(round(badges.BADGE_W * badges._PX)), "-H", str(round(badges.BADGE_H * badges._PX)),
                    str(tmp_path / f"{name}.pdf"), str(tmp_path / name)], check=True)
    return Image.open(tmp_path / f"{name}.png")


def test_pdf_badge_puts_each_tone_mark_above_its_vowel_not_on_it(tmp_path):
    one = _stacked_badge()
    shaped = _name_marks(_pdf_badge_image(tmp_path, one), badges._PX, one)
    assert len(shaped) == MARKS_IN_NAME and _stacking(shaped) == (STACKS_IN_NAME, 0), shaped
    plain = _name_marks(_pdf_badge_image(tmp_path, one, shaping=False), badges._PX, one)
    assert _stacking(plain)[0] == 0, plain  # fpdf2 without shaping: each tone mark lands on its vowel


def test_rendering_refuses_without_raqm(monkeypatch, tmp_path):
    monkeypatch.setattr(badges.features, "check", lambda name: False)
    with pytest.raises(RenderError, match="libfribidi"):
        require_raqm()
    with pytest.raises(RenderError):
        badge_png(card(0))
    with pytest.raises(RenderError):
        badge_sheet_pdf([card(0)], tmp_path / "x.pdf")
    assert not (tmp_path / "x.pdf").exists()


def test_a_long_name_shrinks_to_fit_instead_of_running_into_the_qr():
    measure = badges._pillow_measure
    ops = badges.badge_layout(card(3), measure)
    qr = next(op for op in ops if isinstance(op, badges.QR))
    for op in ops:
        if isinstance(op, badges.Text) and op.baseline < qr.y + qr.size and op.width < 80:
            assert op.x + measure(op.text, op.bold) * op.size <= qr.x, op.text
