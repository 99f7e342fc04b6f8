"""Names, titles, areas, national IDs and phone numbers."""

import pytest

from kiosk.errors import PeopleError
from kiosk.people.participants import normalize_role
from kiosk.thai import area_label, clean_text, national_id_valid, normalize_phone, resolve_area, split_title


@pytest.mark.parametrize("nid, valid", [
    ("1101700203450", True), ("1101700203451", False), ("110170020345", False), ("11017002034500", False),
    ("abcdefghijklm", False), ("3100600123456", False),
])
def test_national_id_check_digit(nid, valid):
    assert national_id_valid(nid) is valid


@pytest.mark.parametrize("raw, expected", [
    ("นางสาวสมหญิง ใจดี", ("นางสาว", "สมหญิง ใจดี")),
    ("นางมาลี ทองคำ", ("นาง", "มาลี ทองคำ")),
    ("น.ส. ณัฐธิดา ชื่นทรวง", ("นางสาว", "ณัฐธิดา ชื่นทรวง")),
    ("สมชาย ใจดี", ("", "สมชาย ใจดี")),
])
def test_titles_are_split_from_names(raw, expected):
    assert split_title(raw) == expected


def test_clean_text_composes_sara_am_and_drops_invisible_characters():
    assert clean_text("น\u0e4d\u0e49\u0e32") == "น้ำ"
    assert clean_text("  ผู้\u200bใหญ่\ufeff  บ้าน ") == "ผู้ใหญ่ บ้าน"


@pytest.mark.parametrize("province, district, subdistrict, codes", [
    ("กทม.", "เขตดินแดง", "แขวงดินแดง", ("10", "1026", "102601")),
    ("กรุงเทพมหานคร", "ห้วยขวาง", "", ("10", "1017", None)),
    ("", "ป้อมปราบศัตรูพ่าย", "", ("10", "1008", None)),
    ("จ.สุราษฎร์ธานี", "อ.เกาะพะงัน", "ต.เกาะเต่า", ("84", "8405", "840503")),
    ("Surat Thani", "Mueang", "", ("84", "8401", None)),
])
def test_areas_resolve_from_what_people_write(province, district, subdistrict, codes):
    area = resolve_area(province, district, subdistrict)
    assert (area.province_code, area.district_code, area.subdistrict_code) == codes


@pytest.mark.parametrize("province, district, reason", [
    ("จังหวัดไม่มีจริง", "", "unknown_area"),
    ("กรุงเทพมหานคร", "อ.เมือง", "unknown_area"),
    ("", "เมือง", "ambiguous_area"),
])
def test_unknown_and_ambiguous_areas_are_refused(province, district, reason):
    with pytest.raises(PeopleError) as caught:
        resolve_area(province, district)
    assert caught.value.reason == reason


def test_area_labels_follow_bangkok_and_provincial_usage():
    assert area_label("10", "1026", "102601") == "แขวงดินแดง เขตดินแดง กรุงเทพมหานคร"
    assert area_label("84", "8405", "840503") == "ต.เกาะเต่า อ.เกาะพะงัน จ.สุราษฎร์ธานี"


@pytest.mark.parametrize("raw, expected", [("081-234-5678", "0812345678"), ("+66 81 234 5678", "0812345678"),
                                           ("02 123 4567", "021234567"), ("", "")])
def test_phone_numbers_normalise(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", ["12345", "0812345678901", "abc"])
def test_bad_phone_numbers_are_refused(raw):
    with pytest.raises(PeopleError):
        normalize_phone(raw)


@pytest.mark.parametrize("raw, role", [("วิทยากร", "speaker"), ("", "participant"), ("Staff", "staff"),
                                       ("ผู้สังเกตการณ์", "observer")])
def test_roles_from_thai_or_english(raw, role):
    assert normalize_role(raw) == role


@pytest.mark.parametrize("person, name", [
    ({"title": "นางสาว", "first_name": "สมหญิง", "last_name": "ใจดี"}, "นางสาวสมหญิง ใจดี"),
    ({"title": "นาย", "first_name": "John", "last_name": "Smith"}, "นาย John Smith"),
    ({"title": "Mr.", "first_name": "Somchai", "last_name": "Jaidee"}, "Mr. Somchai Jaidee"),
    ({"title": "", "first_name": "สมชาย", "last_name": "ใจดี"}, "สมชาย ใจดี"),
])
def test_full_names_join_titles_as_thai_and_english_write_them(person, name):
    from kiosk.thai import full_name

    assert full_name(person) == name


def _count(db, table: str) -> int:
    return db.execute(f"select count(*) from {table}").fetchone()[0]


def test_register_participant_creates_the_person_and_a_badge_together(db, event):
    from kiosk.badges.codes import verify_code
    from kiosk.badges.issuing import active_badge
    from kiosk.people.participants import register_participant
    from kiosk.trust.programkeys import program_keys

    cohort = {"id": event["cohort_id"], "program_id": event["program_id"]}
    person = register_participant(db, cohort, {"title": "น.ส.", "first_name": "กัลยา", "last_name": "ผู้ที่ยิ่งใหญ่",
                                               "province": "กทม.", "district": "เขตดินแดง", "phone": "081-234-5678"},
                                  via="walk_in")
    assert (person["title"], person["phone"], person["cohort_id"]) == ("นางสาว", "0812345678", event["cohort_id"])
    assert active_badge(db, person["id"])["code"] == person["code"]
    assert verify_code(person["code"], program_keys(db)) == event["program_id"]
    stored = db.execute("select registered_via, status from participants where id = ?", [person["id"]]).fetchone()
    assert tuple(stored) == ("walk_in", "active")


def test_register_participant_without_a_badge(db, event):
    from kiosk.people.participants import register_participant

    cohort = {"id": event["cohort_id"], "program_id": event["program_id"]}
    badges = _count(db, "badges")
    person = register_participant(db, cohort, {"first_name": "สมศรี", "last_name": "มีสุข"}, issue_badge=False)
    assert person["code"] is None and _count(db, "badges") == badges


@pytest.mark.parametrize("fields, reason", [
    ({"first_name": "   ", "last_name": "ใจดี"}, "missing_name"),
    ({"first_name": "สมชาย", "last_name": "ใจดี", "phone": "08x1234567"}, "bad_phone"),
    ({"first_name": "สมชาย", "last_name": "ใจดี", "national_id": "1101700203451"}, "bad_national_id"),
    ({"first_name": "สมชาย", "last_name": "ใจดี", "province": "เชียงใหม่", "district": "ดินแดง"}, "unknown_area"),
])
def test_register_participant_refuses_bad_input_and_writes_nothing(db, event, fields, reason):
    from kiosk.people.participants import register_participant

    cohort = {"id": event["cohort_id"], "program_id": event["program_id"]}
    before = (_count(db, "participants"), _count(db, "badges"), _count(db, "changes"))
    with pytest.raises(PeopleError) as refused:
        register_participant(db, cohort, fields)
    assert refused.value.reason == reason
    assert (_count(db, "participants"), _count(db, "badges"), _count(db, "changes")) == before
