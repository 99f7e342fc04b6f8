"""Roster import: encodings, headers, bad rows, re-import, hostile files."""

import csv
import io

import openpyxl
import pytest

from kiosk.people.roster import RosterError, import_roster, read_table
from kiosk.program import events
from kiosk.program.demo import demo_people

HEADER = ["ลำดับ", "คำนำหน้า", "ชื่อ", "นามสกุล", "ตำแหน่ง", "เขต", "จังหวัด", "โทรศัพท์", "ประเภท"]


def rows_of(people):
    return [[str(i), p["title"], p["first_name"], p["last_name"], p["position"], p["district"], p["province"],
             p["phone"], p["role"]] for i, p in enumerate(people, 1)]


def csv_bytes(rows, encoding="utf-8", header=HEADER):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


@pytest.fixture
def target(db, event):
    program = events.get_program(db, event["program_id"])
    return program, events.cohort_by_id(db, event["cohort2_id"])


def people_in(db, cohort):
    return sorted((p["title"], p["first_name"], p["last_name"], p["district_code"], p["phone"], p["role"])
                  for p in db.query("select * from participants where cohort_id = ?", [cohort["id"]]))


def test_two_hundred_rows_with_three_bad_lists_exactly_those_and_imports_nothing(db, target):
    rows = rows_of(demo_people())
    rows[10][5] = "เขตไม่มีจริง"          # unknown district
    rows[77][2] = ""                     # missing name
    rows[150][7] = "12345"               # not a Thai phone number
    result = import_roster(db, csv_bytes(rows), *target)
    assert [(p.row, p.reason) for p in result.problems] == [(12, "unknown_area"), (79, "missing_name"), (152, "bad_phone")]
    assert not result.imported
    assert people_in(db, target[1]) == []


def test_cp874_file_imports_the_same_people_as_its_utf8_twin(db, data_dir, target, tmp_path):
    rows = rows_of(demo_people()[:60])
    utf8 = import_roster(db, b"\xef\xbb\xbf" + csv_bytes(rows), *target)
    first = people_in(db, target[1])
    twin_id = events.create_program(db, "twin")
    other = events.cohort_by_id(db, events.add_cohort(db, twin_id, 1, events.parse_day("2030-02-01")))
    thai_windows = import_roster(db, csv_bytes(rows, "cp874"), events.get_program(db, twin_id), other)
    assert utf8.added == thai_windows.added == 60
    assert people_in(db, other) == first


def test_same_file_twice_changes_nothing_and_an_edited_file_updates_only_the_changed(db, target):
    rows = rows_of(demo_people()[:30])
    assert import_roster(db, csv_bytes(rows), *target).added == 30
    log_size = db.execute("select count(*) from changes").fetchone()[0]
    again = import_roster(db, csv_bytes(rows), *target)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 30)
    assert db.execute("select count(*) from changes").fetchone()[0] == log_size
    rows[3][7] = "0899999999"
    edited = import_roster(db, csv_bytes(rows), *target)
    assert (edited.added, edited.updated, edited.unchanged) == (0, 1, 29)
    assert db.execute("select count(*) from participants where phone = '0899999999'").fetchone()[0] == 1


def test_xlsx_with_english_headers_on_the_second_sheet(db, target, tmp_path):
    book = openpyxl.Workbook()
    book.active.title = "Notes"
    book.active.append(["This sheet is a cover page"])
    sheet = book.create_sheet("Roster")
    sheet.append(["No", "Title", "First name", "Last name", "Province", "District", "Subdistrict", "Role"])
    sheet.append([1, "Mr.", "Somchai", "Jaidee", "Lampang", "Mueang", "Phrabat", "participant"])
    sheet.append([2, "นาง", "มาลี", "ทองคำ", "จ.ลำปาง", "อ.เมือง", "ต.พระบาท", "วิทยากร"])
    path = tmp_path / "r.xlsx"
    book.save(path)
    result = import_roster(db, path.read_bytes(), *target)
    assert result.added == 2, result.problems
    roles = dict(db.execute("select first_name, role from participants where cohort_id = ?", [target[1]["id"]]).fetchall())
    assert roles == {"Somchai": "participant", "มาลี": "speaker"}


def test_full_name_column_is_split_into_title_first_and_last(db, target):
    data = csv_bytes([["นางสาวณัฐธิดา ชื่นทรวง", "ดินแดง", "กทม."]], header=["ชื่อ-สกุล", "เขต", "จังหวัด"])
    assert import_roster(db, data, *target).added == 1
    row = db.execute("select title, first_name, last_name, province_code from participants where cohort_id = ?",
                     [target[1]["id"]]).fetchone()
    assert row == ("นางสาว", "ณัฐธิดา", "ชื่นทรวง", "10")


def test_names_are_cleaned_of_zero_width_characters_and_decomposed_sara_am(db, target):
    data = csv_bytes([["นาย", "น\u0e49\u0e4d\u0e32\u200bฝน", "ใจ\u200dดี", "ดินแดง", "กรุงเทพมหานคร"]],
                     header=["คำนำหน้า", "ชื่อ", "นามสกุล", "เขต", "จังหวัด"])
    assert import_roster(db, data, *target).added == 1
    assert db.execute("select first_name, last_name from participants where cohort_id = ?",
                      [target[1]["id"]]).fetchone() == ("น้ำฝน", "ใจดี")


@pytest.mark.parametrize("cell, reason", [
    ('=HYPERLINK("http://x","click")', "formula"),
    ("@SUM(A1)", "formula"),
    ("สมชาย", None),
])
def test_formula_looking_cells_are_refused(db, target, cell, reason):
    data = csv_bytes([["นาย", cell, "ใจดี", "ดุสิต", "กรุงเทพมหานคร"]], header=["คำนำหน้า", "ชื่อ", "นามสกุล", "เขต", "จังหวัด"])
    result = import_roster(db, data, *target)
    assert [p.reason for p in result.problems] == ([reason] if reason else [])


def test_duplicate_person_in_one_file_is_reported_with_the_first_row(db, target):
    rows = rows_of(demo_people()[:5])
    rows.append(list(rows[1]))
    result = import_roster(db, csv_bytes(rows), *target)
    assert [(p.row, p.reason, p.message) for p in result.problems] == [(7, "duplicate", "same person as row 3")]
    assert not result.imported


def test_national_id_with_bad_check_digit_is_a_row_problem(db, target):
    header = ["ชื่อ", "นามสกุล", "จังหวัด", "เลขบัตรประชาชน"]
    result = import_roster(db, csv_bytes([["สมชาย", "ใจดี", "ลำปาง", "1101700203452"],
                                          ["สมศรี", "ใจดี", "ลำปาง", "1101700203450"]], header=header), *target)
    assert [(p.row, p.reason) for p in result.problems] == [(2, "bad_national_id")]


def test_national_id_is_stored_only_hashed_with_its_last_four_digits(db, target):
    header = ["ชื่อ", "นามสกุล", "จังหวัด", "เลขบัตรประชาชน"]
    assert import_roster(db, csv_bytes([["สมศรี", "ใจดี", "ลำปาง", "1-1017-00203-45-0"]], header=header), *target).added == 1
    dump = "\n".join(db.iterdump())
    assert "1101700203450" not in dump
    assert db.execute("select nid_last4 from participants where first_name = 'สมศรี'").fetchone()[0] == "3450"


@pytest.mark.parametrize("data, reason", [
    (b"", "empty_file"),
    (b"   \n\n", "empty_file"),
    (b"\x00\x01\x02\xff" * 100, "not_a_roster"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old_excel"),
    (b"PK\x03\x04broken zip", "bad_xlsx"),
    (b"a,b,c\n1,2,3\n", "no_header"),
    (b"x" * (50 * 1024 * 1024), "file_too_large"),
])
def test_malformed_files_get_a_reason_and_import_nothing(db, target, data, reason):
    with pytest.raises(RosterError) as caught:
        import_roster(db, data, *target)
    assert caught.value.reason == reason
    assert people_in(db, target[1]) == []


def test_xlsx_without_a_roster_sheet(tmp_path):
    book = openpyxl.Workbook()
    book.active.append(["Budget", "2570"])
    path = tmp_path / "wrong.xlsx"
    book.save(path)
    with pytest.raises(RosterError) as caught:
        read_table(path.read_bytes())
    assert caught.value.reason == "no_roster_sheet"


def test_skip_bad_imports_the_good_rows(db, target):
    rows = rows_of(demo_people()[:10])
    rows[0][5] = "ไม่มีเขตนี้"
    result = import_roster(db, csv_bytes(rows), *target, skip_bad=True)
    assert result.imported and result.added == 9 and len(result.problems) == 1


def _workbook(rows) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_bad_rows_are_named_by_their_excel_row_with_the_person_and_the_value(db, target):
    data = _workbook([
        ["รายชื่อผู้เข้าอบรม รุ่นที่ 2"],                                 # row 1: a title
        [],                                                              # row 2: blank
        ["ลำดับ", "ชื่อ", "นามสกุล", "เขต", "จังหวัด", "โทรศัพท์"],           # row 3: the header
        [1, "สมใจ", "ดีงาม", "ดินแดง", "กรุงเทพมหานคร", "0812223333"],     # row 4
        [],                                                              # row 5: blank
        [2, "สมศรี", "มีสุข", "ดุสิต", "กรุงเทพมหานคร", "12"],              # row 6: a bad phone
        [3, "มานะ", "ขยัน", "บางเขต", "กรุงเทพมหานคร", ""],                # row 7: no such district
    ])
    result = import_roster(db, data, *target)
    assert [(p.row, p.name, p.field, p.value, p.reason) for p in result.problems] == [
        (6, "สมศรี มีสุข", "phone", "12", "bad_phone"), (7, "มานะ ขยัน", "district", "บางเขต", "unknown_area")]
    assert result.good == 1 and not result.imported


def test_a_blank_csv_line_counts_as_a_row_like_in_excel(db, target):
    data = "ชื่อ,นามสกุล\nสมใจ,ดีงาม\n\nสมศรี,\n".encode()
    assert [p.row for p in import_roster(db, data, *target).problems] == [4]


@pytest.mark.parametrize("cell, stored", [(812345678, "0812345678"), (812345678.0, "0812345678"),
                                          (21234567, "021234567"), ("66891234567", "0891234567"),
                                          ("081-234-5678", "0812345678")])
def test_a_phone_excel_kept_as_a_number_gets_its_leading_zero_back(db, target, cell, stored):
    result = import_roster(db, _workbook([["ชื่อ", "นามสกุล", "โทรศัพท์"], ["สมใจ", "ดีงาม", cell]]), *target)
    assert result.imported and not result.problems
    assert db.execute("select phone from participants where first_name = 'สมใจ'").fetchone()[0] == stored
    assert [(r.row, r.after) for r in result.repairs] == ([] if isinstance(cell, str) and cell.startswith("0")
                                                          else [(2, stored)])


def test_a_national_id_at_fault_is_shown_by_its_last_four_digits_only(db, target):
    result = import_roster(db, "ชื่อ,นามสกุล,เลขบัตรประชาชน\nสมใจ,ดีงาม,1234567890123\n".encode(), *target)
    [problem] = result.problems
    assert problem.reason == "bad_national_id" and problem.value.endswith("0123") and "123456789" not in problem.value


def test_an_imported_person_carries_who_imported_the_roster_and_when(db, target):
    rows = [["ประเสริฐ", "ทองคำ", "ดินแดง", "กรุงเทพมหานคร"]]
    assert import_roster(db, csv_bytes(rows, header=["ชื่อ", "นามสกุล", "เขต", "จังหวัด"]), *target, by="chief").added == 1
    via, by, at = db.execute("select consent_via, consent_by, consent_at from participants"
                             " where first_name = 'ประเสริฐ'").fetchone()
    assert (via, by) == ("roster", "chief") and at
