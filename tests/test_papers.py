"""The office's papers: signature sheets, certificates, allowances read back with pdftotext and
zxing, a page of each rendered to PNG; exports opened with openpyxl; the paper fallback."""

import csv
import io
import subprocess
from decimal import Decimal

import openpyxl
import pytest
import zxingcpp
from PIL import Image

from kiosk.badges.codes import paper_row_code, verify_certificate_code
from kiosk.documents import papers
from kiosk.documents.sheets import paginate, sheet_rows
from kiosk.door.checkin import check_in
from kiosk.reports.attendance import grid
from kiosk.reports.export import grid_table, report_tables, text_width, to_csv, to_xlsx
from kiosk.reports.sources import kiosk_dataset
from kiosk.store import changes
from kiosk.trust.programkeys import program_keys

from scenarios import bangkok, bangkok_present, national, national_present, pdf_letters


def pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


def page_png(path, page: int, out_dir, dpi: int = 80) -> Image.Image:
    prefix = out_dir / f"{path.stem}-{page}"
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), "-f", str(page), "-l", str(page), "-singlefile",
                    str(path), str(prefix)], check=True)
    return Image.open(f"{prefix}.png")


@pytest.fixture
def bkk(db):
    scenario = bangkok(db)
    scenario["data"] = kiosk_dataset(db, scenario["program_id"], scenario["cohort_id"])
    return scenario


def test_signature_sheet_groups_by_district_with_times_totals_and_no_phone(tmp_path, bkk):
    out = tmp_path / "sheet.pdf"
    papers.sheet(bkk["data"], bkk["sessions"][0], bkk["key"], out=out)
    text = pdf_text(out)
    letters = pdf_letters(text)
    assert pdf_letters("ใบลงลายมือชื่อผู้เข้ารับการอบรม") in letters
    assert pdf_letters("วันที่ 21 พฤศจิกายน พ.ศ. 2569") in letters
    for person in bkk["people"][:30]:
        assert pdf_letters(f"{person['title']}{person['first_name']} {person['last_name']}") in letters
        assert person["phone"] not in text
    came = sum(bangkok_present(i, 0) for i in range(200))
    assert pdf_letters(f"รวมทั้งสิ้น 200 คน มาแล้ว {came} คน") in letters
    dindaeng = [i for i, p in enumerate(bkk["people"]) if p["district"] == "ดินแดง" and p["role"] == "participant"]
    assert pdf_letters(f"รวมเขตดินแดง {len(dindaeng)} คน มาแล้ว {sum(bangkok_present(i, 0) for i in dindaeng)} คน") \
        in letters
    assert "08.0" in text and "หน้า 1/" in text
    assert pdf_letters("ผู้เข้าร่วมเพิ่มเติม") in letters  # the walk-in page


def test_a_signed_sheet_row_scanned_at_the_door_is_a_paper_check_in(tmp_path, db, bkk):
    day2 = bkk["sessions"][1]
    index_of = {p["id"]: i for i, p in enumerate(bkk["people"])}
    absent = next(p for p in bkk["data"].active if not bangkok_present(index_of[p["id"]], 1))
    out = tmp_path / "sheet.pdf"
    papers.sheet(bkk["data"], day2, bkk["key"], out=out)
    pages = paginate(sheet_rows(bkk["data"], day2, bkk["key"]))
    page = next(n for n, rows in enumerate(pages, 1) if any(r.person and r.person["id"] == absent["id"] for r in rows))
    codes = {r.text for r in zxingcpp.read_barcodes(page_png(out, page, tmp_path, dpi=300))}
    assert len(codes) >= 15 and all(c.startswith("P") and len(c) == 25 for c in codes)
    row_code = paper_row_code(bkk["program_id"], absent["id"], day2["id"], bkk["key"])
    assert row_code in codes
    result = check_in(db, row_code, paper=True)  # days later, outside the session's window
    assert result.status == "checked_in" and result.participant["id"] == absent["id"]
    assert result.session["id"] == day2["id"]
    assert db.execute("select via from scans where id = ?", [result.scan_id]).fetchone()[0] == "paper"
    assert check_in(db, row_code, paper=True).status == "already_checked_in"
    data = kiosk_dataset(db, bkk["program_id"], bkk["cohort_id"])
    row = next(r for r in grid(data)["rows"] if r["id"] == absent["id"])
    assert row["marks"][1] == "paper"


def test_blank_sheet_has_only_numbered_walk_in_rows(tmp_path, bkk):
    out = tmp_path / "blank.pdf"
    papers.sheet(bkk["data"], bkk["sessions"][0], bkk["key"], out=out, blank=True)
    text = pdf_text(out)
    assert "17" in text and bkk["people"][0]["last_name"] not in text
    assert not zxingcpp.read_barcodes(page_png(out, 1, tmp_path, dpi=150))


def test_certificates_for_the_eligible_with_thai_dates_and_a_qr_verified_offline(tmp_path, db):
    nat = national(db)
    data = kiosk_dataset(db, nat["program_id"], nat["cohort_id"])
    out = tmp_path / "certificates.pdf"
    count = papers.certificates(data, nat["key"], out=out)
    winners = [p for i, p in enumerate(nat["people"]) if sum(national_present(i, d) for d in range(4)) >= 4]
    assert count == len(winners)
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True).stdout
    assert f"Pages:           {count}" in info and "841.89 x 595.28" in info  # A4 landscape
    letters = pdf_letters(pdf_text(out))
    assert pdf_letters("28 กุมภาพันธ์ – 3 มีนาคม พ.ศ. 2562") in letters
    for person in winners[:10]:
        assert pdf_letters(f"{person['title']}{person['first_name']} {person['last_name']}") in letters
    image = page_png(out, 1, tmp_path, dpi=200)
    code = zxingcpp.read_barcodes(image)[0].text
    program_id, participant_id = verify_certificate_code(code, program_keys(db))
    assert program_id == nat["program_id"] and participant_id in {p["id"] for p in winners}


def test_allowance_sheet_amounts_in_figures_and_thai_words(tmp_path, bkk):
    out = tmp_path / "allowances.pdf"
    sheet = papers.allowances(bkk["data"], Decimal("600"), out=out)
    both = sum(bangkok_present(i, 0) and bangkok_present(i, 1) for i in range(180))
    one = sum(bangkok_present(i, 0) != bangkok_present(i, 1) for i in range(180))
    assert sheet["days"] == 2 * both + one and sheet["total"] == 600 * (2 * both + one)
    letters = pdf_letters(pdf_text(out))
    assert pdf_letters("หนึ่งพันสองร้อยบาทถ้วน") in letters and pdf_letters("หกร้อยบาทถ้วน") in letters
    assert f"{sheet['total']:,.2f}" in pdf_text(out)
    assert pdf_letters(sheet["total_words"]) in letters


def test_a_page_of_each_document_renders(tmp_path, bkk, db):
    made = {"sheet": papers.sheet(bkk["data"], bkk["sessions"][0], bkk["key"], out=tmp_path / "sheet.pdf")}
    papers.allowances(bkk["data"], 600, out=tmp_path / "allowances.pdf")
    papers.certificates(bkk["data"], bkk["key"], out=tmp_path / "certificates.pdf")
    for name in ("sheet", "allowances", "certificates"):
        image = page_png(tmp_path / f"{name}.pdf", 1, tmp_path)
        assert image.size[0] > 600 and image.size[1] > 600
        dark = sum(1 for px in image.convert("L").get_flattened_data() if px < 128)
        assert dark > 2000, f"{name} page is nearly blank"
    assert made["sheet"].exists()


def test_xlsx_holds_the_pages_numbers_and_the_grid(bkk):
    book = openpyxl.load_workbook(io.BytesIO(papers.report(bkk["data"], "xlsx")[0]))
    assert book.sheetnames[:2] == ["สรุป", "รายช่วง"] and "รายบุคคล" in book.sheetnames
    heads, *sessions = list(book["รายช่วง"].iter_rows(values_only=True))
    present, registered = heads.index("มา"), heads.index("ผู้ลงทะเบียน")
    assert [row[present] for row in sessions] == [sum(bangkok_present(i, d) for i in range(200)) for d in (0, 1)]
    assert [row[registered] for row in sessions] == [200, 200] and heads[heads.index("เป้าหมายของรุ่น")] != "คาดไว้"
    grid = list(book["รายบุคคล"].iter_rows(values_only=True))
    assert len(grid) == 201 and grid[0][1] == "ชื่อ-สกุล"


def test_a_formula_name_comes_out_as_text_in_csv_and_xlsx(db, bkk):
    # The roster import and the forms refuse formulas, so the name arrives as a change (as a
    # tampered kiosk or an old export could send it) through the one write path.
    person = bkk["people"][0]
    changes.write(db, bkk["program_id"], "participants", person["id"], {"title": "", "first_name": '=HYPERLINK("http://x")'})
    data = kiosk_dataset(db, bkk["program_id"], bkk["cohort_id"])
    tables = [*report_tables(data), grid_table(data)]
    rows = list(csv.reader(io.StringIO(to_csv(tables).decode("utf-8-sig"))))
    cells = [c for row in rows for c in row if "HYPERLINK" in c]
    assert cells and all(c.startswith("'") for c in cells)
    book = openpyxl.load_workbook(io.BytesIO(to_xlsx(tables)))
    found = [c for row in book["รายบุคคล"].iter_rows() for c in row if "HYPERLINK" in str(c.value)]
    assert found and all(c.data_type == "s" for c in found)
    import zipfile
    sheet_xml = b"".join(zipfile.ZipFile(io.BytesIO(to_xlsx(tables))).read(n) for n in
                         zipfile.ZipFile(io.BytesIO(to_xlsx(tables))).namelist() if n.startswith("xl/worksheets/"))
    assert b"<f>" not in sheet_xml


def test_csv_starts_with_a_bom_for_thai_excel(bkk):
    body = papers.report(bkk["data"], "csv")[0]
    assert body.startswith("\ufeff".encode()) and "ผู้ลงทะเบียน".encode() in body


def test_xlsx_columns_are_wide_enough_for_thai_names(bkk):
    book = openpyxl.load_workbook(io.BytesIO(papers.report(bkk["data"], "xlsx")[0]))
    grid = book["รายบุคคล"]
    names = [row[1] for row in grid.iter_rows(min_row=2, values_only=True)]
    longest = max(text_width(n) for n in names)
    assert grid.column_dimensions["B"].width >= longest  # the name column: not Excel's 8.43 default
    assert book["สรุป"].column_dimensions["A"].width >= text_width("การลงชื่อทั้งหมด (คน-ช่วง)")
