"""The scenarios of the organizers' own documents (Bangkok cohorts, a province, a national course),
built through the real domain (events, people, check_in), with the plan each was built from so
tests can compute the expected numbers on their own.

* Bangkok (seed 000): cohort 1, two days, 180 participants from 8 district offices + 6 speakers
  + 14 staff; some day-2 check-ins come from the paper sheet scanned back.
* National (seed 003): 77 provinces × 2 people, four days (28 Feb – 3 Mar 2562 BE),
  certificates at ≥ 80 % of sessions.
* A coordinator's second day (`corrections_day`): a session removed after check-ins, one still
  to come, targets at every level, corrections by hand, a withdrawn person.
"""

import unicodedata
from datetime import date, datetime, time, timedelta

import geothai

from kiosk.badges.codes import paper_row_code
from kiosk.clock import LOCAL_ZONE, local_day
from kiosk.door.checkin import check_in
from kiosk.people import participants
from kiosk.people.participants import register_participant
from kiosk.program import events
from kiosk.program.demo import DISTRICTS, ORGANIZER, TITLE, VENUE, demo_people
from kiosk.reports.certificates import make_rule
from kiosk.reports.settings import kiosk_writer, set_certificate_rule
from kiosk.store.db import transaction
from kiosk.trust import programkeys

BANGKOK_START = date(2026, 11, 21)
NATIONAL_START = date(2019, 2, 28)
# Names whose stacked marks a renderer without shaping breaks: ผู้ที่, กล่ำ, ฐุ / ญุ.
HARD_NAMES = (("นาย", "กล่ำ", "ผู้ที่มั่น"), ("นางสาว", "ฐุติมา", "บุญญุตม์"), ("นาง", "น้ำผึ้ง", "ชื่นฉ่ำ"))


def _at(day: date, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, 7, 30, tzinfo=LOCAL_ZONE) + timedelta(minutes=minute % 240)


def _add_people(db, program_id: str, cohort_id: str, raws: list[dict]) -> list[dict]:
    cohort = events.cohort_by_id(db, cohort_id)
    with transaction(db):
        return [{**raw, **register_participant(db, cohort, raw)} for raw in raws]


def bangkok_present(index: int, day: int) -> bool:
    """Who came on which day (0 or 1) in the Bangkok scenario."""
    return index % 6 != 5 if day == 0 else index % 4 != 3


def bangkok_paper(index: int) -> bool:
    """Day-2 attendance that came from the signed paper sheet instead of the door."""
    return index % 10 == 0 and bangkok_present(index, 1)


def bangkok(db) -> dict:
    """Seed 000's cohort 1 with its check-ins; returns ids, people (with `district`) and sessions."""
    program_id = events.create_program(db, TITLE, ORGANIZER, 2570)
    site = events.add_site(db, program_id, VENUE)
    cohort_id = events.add_cohort(db, program_id, 1, BANGKOK_START, 2, site)
    for role, expected in (("participant", 180), ("speaker", 6), ("staff", 14)):
        events.add_target(db, program_id, expected, cohort_id, role)
    for district in DISTRICTS:
        events.add_target(db, program_id, 22, cohort_id, "participant", "กรุงเทพมหานคร", district)
    people = _add_people(db, program_id, cohort_id, demo_people())
    sessions = events.sessions(db, cohort_id)
    key = programkeys.badge_key(db, program_id)
    for i, person in enumerate(people):
        for d, session in enumerate(sessions):
            if not bangkok_present(i, d):
                continue
            if d == 1 and bangkok_paper(i):  # scanned back from the sheet the next morning
                code = paper_row_code(program_id, person["id"], session["id"], key)
                check_in(db, code, at=_at(BANGKOK_START + timedelta(days=2), i), paper=True)
            else:
                check_in(db, person["code"], session["id"], at=_at(BANGKOK_START + timedelta(days=d), i))
    return {"program_id": program_id, "cohort_id": cohort_id, "people": people, "sessions": sessions, "key": key}


def national_present(index: int, day: int) -> bool:
    """Who came on which of the four days in the national scenario."""
    return (index * 7 + day * 3) % 10 != 0 and not (index % 13 == 0 and day >= 2)


def national_people() -> list[dict]:
    """77 provinces × 2 people; the first three carry the hard-to-shape names."""
    first = ("สมชาย", "สมหญิง", "ประเสริฐ", "มาลี", "วิชัย", "สุนีย์", "อนุชา", "ลำดวน", "ธีรพงษ์", "บุษบา")
    last = ("ใจดี", "ศรีสุข", "ทองคำ", "แก้วมณี", "บุญเรือง", "วงศ์ใหญ่", "มั่นคง", "เจริญผล", "อ่อนน้อม", "ปิ่นทอง")
    people = []
    for p_index, province in enumerate(geothai.provinces()):
        for k in range(2):
            n = p_index * 2 + k
            title, given, family = HARD_NAMES[n] if n < len(HARD_NAMES) else (
                "นาย" if n % 2 else "นาง", first[n % 10], last[(n // 10) % 10] + str(n))
            people.append({"title": title, "first_name": given, "last_name": family, "role": "participant",
                           "province": province.name_th, "province_code": province.code,
                           "position": "พัฒนาการจังหวัด" if k == 0 else "นักวิชาการพัฒนาชุมชน",
                           "organization": f"สำนักงานพัฒนาชุมชนจังหวัด{province.name_th}"})
    return people


def national(db) -> dict:
    """Seed 003's training of trainers: four days, certificates at ≥ 80 % of sessions."""
    program_id = events.create_program(db, "โครงการฝึกอบรมวิทยากรกระบวนการระดับจังหวัด", "กรมการพัฒนาชุมชน", 2562)
    site = events.add_site(db, program_id, "สถาบันการพัฒนาชุมชน จังหวัดปทุมธานี")
    cohort_id = events.add_cohort(db, program_id, 1, NATIONAL_START, 4, site)
    events.add_target(db, program_id, 154, cohort_id, None)
    set_certificate_rule(kiosk_writer(db), program_id, make_rule("percent", 80, "นายสมศักดิ์ ผู้ที่กล่ำ",
                                                                 "อธิบดีกรมการพัฒนาชุมชน"))
    people = _add_people(db, program_id, cohort_id, national_people())
    sessions = events.sessions(db, cohort_id)
    for i, person in enumerate(people):
        for d, session in enumerate(sessions):
            if national_present(i, d):
                check_in(db, person["code"], session["id"], at=_at(NATIONAL_START + timedelta(days=d), i))
    key = programkeys.badge_key(db, program_id)
    return {"program_id": program_id, "cohort_id": cohort_id, "people": people, "sessions": sessions, "key": key}


def pdf_letters(text: str) -> str:
    """Text as pdftotext gives it back, reduced to what survives its layout-based reading of Thai:
    no whitespace, no above/below marks (it files them after the wrong letter), ำ as า."""
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not ch.isspace() and not unicodedata.combining(ch)
                   and ch not in "\u0e31\u0e34\u0e35\u0e36\u0e37\u0e38\u0e39\u0e3a\u0e47\u0e48\u0e49\u0e4a\u0e4b\u0e4c\u0e4d\u0e4e")


def corrections_day(db) -> dict:
    """A program on its second day: cohort 1 from yesterday to tomorrow (today's session removed
    after check-ins, tomorrow's still to come), cohort 2 held last week; targets for the program,
    the cohort, its roles and areas at every level; corrections by hand; a withdrawn person."""
    today = local_day()
    pid = events.create_program(db, "อบรมอาสาสมัครพัฒนาสังคม", "สำนักงานพัฒนาสังคม", 2570)
    first, second = (events.add_cohort(db, pid, n, start, days)
                     for n, start, days in ((1, today - timedelta(days=1), 3), (2, today - timedelta(days=7), 1)))
    areas = [("กรุงเทพมหานคร", "ดุสิต", "ดุสิต")] * 3 + [("กรุงเทพมหานคร", "ดุสิต", "วชิรพยาบาล")] * 2 + [
        ("กรุงเทพมหานคร", "พระนคร", "พระบรมมหาราชวัง")] * 2 + [("เชียงใหม่", "เมืองเชียงใหม่", "ศรีภูมิ")] * 3
    people = _volunteers(db, first, [{"province": p, "district": d, "subdistrict": s} for p, d, s in areas]
                     + [{"province": "กรุงเทพมหานคร", "role": "speaker"}, {"role": "staff"}])
    others = _volunteers(db, second, [{"province": "เชียงใหม่", "district": "จอมทอง"}] * 3)
    for expected, cohort, role, area in ((40, None, None, ()), (15, first, None, ()), (12, first, "participant", ()),
                                         (2, first, "speaker", ()), (4, first, None, ("กรุงเทพมหานคร", "ดุสิต", "ดุสิต")),
                                         (3, first, None, ("กรุงเทพมหานคร", "ดุสิต", "วชิรพยาบาล")),
                                         (3, first, "participant", ("กรุงเทพมหานคร", "พระนคร")),
                                         (5, first, None, ("เชียงใหม่",)), (4, second, None, ("เชียงใหม่", "จอมทอง"))):
        events.add_target(db, pid, expected, cohort, role, *area)
    yesterday, today_session, tomorrow = events.sessions(db, first)
    for n, person in enumerate(people):
        if n % 4 != 3:
            check_in(db, person["code"], yesterday["id"], at=_nine(today - timedelta(days=1)))
        if n % 2 == 0:
            check_in(db, person["code"], today_session["id"], at=_nine(today))
    for person in others[:2]:
        check_in(db, person["code"], events.sessions(db, second)[0]["id"], at=_nine(today - timedelta(days=7)))
    row = {p["id"]: participants.get_participant(db, p["id"]) for p in people}
    participants.undo_checkin(db, row[people[0]["id"]], yesterday, "หัวหน้าศูนย์", "บัตรของคนอื่น")
    participants.mark_attended(db, row[people[3]["id"]], yesterday, "หัวหน้าศูนย์", "ลืมบัตร")
    participants.set_status(db, row[people[1]["id"]], "withdrawn")
    events.remove_session(db, today_session["id"])
    return {"program_id": pid, "cohort_id": first, "people": people, "tomorrow": tomorrow,
            "removed": today_session["id"]}


def _nine(day) -> datetime:
    return datetime.combine(day, time(9, 0), LOCAL_ZONE)


def _volunteers(db, cohort_id: str, areas: list[dict]) -> list[dict]:
    cohort = events.cohort_by_id(db, cohort_id)
    with transaction(db):
        return [register_participant(db, cohort, {"first_name": f"อาสา{n}", "last_name": "ใจบุญ", **area})
                for n, area in enumerate(areas)]
