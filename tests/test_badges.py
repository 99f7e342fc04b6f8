"""Badges: every QR printed on a sheet reads back and verifies; Thai is shaped or refused."""

import subprocess

import pytest
import zxingcpp
from PIL import Image

from kiosk import badges
from kiosk.badges import RenderError, badge_png, require_raqm
from kiosk.codes import make_code, verify_code
from kiosk.documents import badge_sheet_pdf
from kiosk.issuance import badge_card, cohort_cards

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
    from kiosk.documents import new_pdf, write_atomically

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
