"""The demo event: Bangkok's orientation for community committees (seed document 000).

Ten cohorts of 200 at the Prince Palace hotel; cohort 1 holds 180 committee members and
community workers from 8 district offices, 6 speakers and 14 staff, on today and tomorrow.
"""

import random
import secrets
from datetime import date, timedelta

from kiosk.clock import local_day
from kiosk.people.participants import ValidFields, participant_fields, register_participant
from kiosk.people.roster import source_key
from kiosk.program import events
from kiosk.store.db import transaction
from kiosk.trust import accounts as auth

TITLE = "โครงการปฐมนิเทศคณะกรรมการชุมชนและเจ้าหน้าที่ผู้ปฏิบัติงานชุมชน"
ORGANIZER = "สำนักพัฒนาสังคม กรุงเทพมหานคร"
VENUE = "ห้องราชาบอลรูม โรงแรมปรินซ์พาเลซ มหานาค เขตป้อมปราบศัตรูพ่าย"
DISTRICTS = ("ดินแดง", "ดุสิต", "ป้อมปราบศัตรูพ่าย", "พญาไท", "ราชเทวี", "สัมพันธวงศ์", "ห้วยขวาง", "สาทร")
MEN = ("สมชาย", "สมศักดิ์", "ประเสริฐ", "วิชัย", "สุรชัย", "ธนากร", "อนุชา", "ชัยวัฒน์", "บุญมี", "สุเทพ",
       "ณรงค์", "ไพโรจน์", "เกียรติศักดิ์", "ปรีชา", "ธีรพงษ์", "วีระ", "สุวิทย์", "พงศ์พันธ์", "กิตติพัฒน์", "ศักดิ์ชัย")
WOMEN = ("สมหญิง", "มาลี", "สุนีย์", "วิไลวรรณ", "กัลยา", "ณัฐธิดา", "พรทิพย์", "อรุณี", "จันทร์เพ็ญ", "ศิริพร",
         "ดวงใจ", "นงลักษณ์", "รัตนา", "สุภาพร", "ปราณี", "อัญชลี", "ลำดวน", "บุษบา", "ผ่องศรี", "น้ำฝน")
SURNAMES = ("ใจดี", "ศรีสุข", "ชื่นทรวง", "สุขเย็น", "ทองคำ", "แก้วมณี", "บุญเรือง", "ภัททิยกุล", "วงศ์ใหญ่",
            "พึ่งบุญ", "รุ่งเรือง", "มั่นคง", "ศักดิ์สิทธิ์", "เพ็ชรรัตน์", "จันทร์หอม", "สายน้ำผึ้ง", "ทรัพย์มาก",
            "เจริญผล", "นาคสวัสดิ์", "ผู้ใหญ่ยิ่ง", "อ่อนน้อม", "เลิศล้ำ", "ปิ่นทอง", "ชาติสุขศิริเดช")
POSITIONS = ("ประธานกรรมการชุมชน", "รองประธานกรรมการชุมชน", "กรรมการชุมชน", "กรรมการชุมชน", "เลขานุการกรรมการชุมชน",
             "เหรัญญิกกรรมการชุมชน", "เจ้าหน้าที่ผู้ปฏิบัติงานชุมชน")
COMMUNITIES = ("ชุมชนวัดดิสหงสาราม", "ชุมชนร่วมใจพัฒนา", "ชุมชนบ้านมั่นคง", "ชุมชนริมคลอง", "ชุมชนสามัคคีธรรม",
               "ชุมชนหลังวัด", "ชุมชนตลาดเก่า", "ชุมชนเคหะสงเคราะห์")


def _person(rng: random.Random, role: str, district: str, index: int) -> dict:
    woman = rng.random() < 0.55
    title = rng.choice(("นาง", "นางสาว")) if woman else "นาย"
    return {
        "title": title, "first_name": rng.choice(WOMEN if woman else MEN), "last_name": rng.choice(SURNAMES),
        "role": role, "province": "กรุงเทพมหานคร", "district": district,
        "position": rng.choice(POSITIONS) if role == "participant" else
        {"speaker": "วิทยากร", "staff": "เจ้าหน้าที่ดำเนินการ"}[role],
        "organization": f"สำนักงานเขต{district}" if role == "participant" else ORGANIZER,
        "community": rng.choice(COMMUNITIES) if role == "participant" else "",
        "phone": f"08{rng.randrange(10**7, 10**8)}", "_n": index,
    }


def demo_people(seed: int = 1) -> list[dict]:
    """Cohort 1's 200 people: 180 from the 8 districts, 6 speakers, 14 staff; names unique."""
    rng = random.Random(seed)
    people, seen = [], set()
    plan = [("participant", DISTRICTS[i % 8]) for i in range(180)]
    plan += [("speaker", "ป้อมปราบศัตรูพ่าย")] * 6 + [("staff", "ป้อมปราบศัตรูพ่าย")] * 14
    for index, (role, district) in enumerate(plan):
        person = _person(rng, role, district, index)
        while (person["first_name"], person["last_name"]) in seen:
            person = _person(rng, role, district, index)
        seen.add((person["first_name"], person["last_name"]))
        people.append(person)
    return people


DEMO_WINDOW = ("00:00", "23:59")  # the demo's first session takes check-ins at any hour of its day


def create_demo(db, data_dir, today: date | None = None, progress=None) -> dict:
    """Creates the demo program (once), moves its days so that cohort 1 meets today and tomorrow,
    opens today's session at any hour, and gives the demo coordinator a new password; returns what
    to print. Any number of runs, on any later day, logged in or not."""
    today = today or local_day()
    existing = [p for p in events.programs(db) if p["title"] == TITLE]
    program_id = existing[0]["id"] if existing else _create_program(db, today, progress)
    moved = _bring_to(db, program_id, today)
    password = secrets.token_urlsafe(9)
    _demo_login(db, password)
    auth.setup_code(db, data_dir)
    return {"program_id": program_id, "created": not existing, "moved_days": moved, "today": today,
            "window": DEMO_WINDOW, "username": "coordinator", "password": password}


def _bring_to(db, program_id: str, today: date) -> int:
    """Cohort n starts today + 7(n - 1) days; returns how many days cohort 1 moved. The first
    session's window is the whole day, so the door is green whatever the hour."""
    moved = 0
    for cohort in events.cohorts(db, program_id):
        delta = events.move_cohort(db, cohort["id"], today + timedelta(days=7 * (cohort["number"] - 1)),
                                   even_with_checkins=True)
        moved = delta if cohort["number"] == 1 else moved
    first = events.sessions(db, events.get_cohort(db, program_id, 1)["id"])[0]
    events.edit_session(db, first["id"], today, first["slot"], *DEMO_WINDOW, first.get("title") or "")
    return moved


def _demo_login(db, password: str) -> None:
    """The demo coordinator with a new password; its old logins end (never deleted: its logins
    and tokens name it)."""
    if auth.get_user(db, "coordinator"):
        auth.change_password(db, "coordinator", password)
        auth.set_disabled(db, "coordinator", False)
    else:
        auth.add_user(db, "coordinator", "coordinator", password, "ผู้ประสานงาน (demo)")


def _create_program(db, today: date, progress) -> str:
    program_id = events.create_program(db, TITLE, ORGANIZER, 2565)
    site = events.add_site(db, program_id, VENUE)
    events.add_site(db, program_id, "สำนักงานเขตดินแดง (ประชุมทางไกล)", kind="remote")
    cohort_ids = [events.add_cohort(db, program_id, n, today + timedelta(days=7 * (n - 1)), 2, site)
                  for n in range(1, 11)]
    for role, expected in (("participant", 180), ("speaker", 6), ("staff", 14)):
        events.add_target(db, program_id, expected, cohort_ids[0], role)
    for district in DISTRICTS:
        events.add_target(db, program_id, 22, cohort_ids[0], "participant", "กรุงเทพมหานคร", district)
    events.add_target(db, program_id, 2000, None, None)
    people = demo_people()
    first = {"id": cohort_ids[0], "program_id": program_id}
    with transaction(db):
        for done, raw in enumerate(people, 1):
            fields = participant_fields(raw)
            register_participant(db, first, ValidFields({**fields, "source_key": source_key(fields)}))
            if progress:
                progress(done, len(people))
    return program_id
