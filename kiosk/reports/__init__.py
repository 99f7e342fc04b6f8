"""Attendance against targets: counts per session, per cohort, per role and area."""

import re

from kiosk.thai import ROLES, area_label, clean_text, full_name


def expected_count(db, cohort_id: str) -> dict[str, int]:
    """Active people of a cohort per role."""
    rows = db.execute("select role, count(*) from participants where cohort_id = ? and status = 'active'"
                      " group by role", [cohort_id]).fetchall()
    return dict(rows)


def session_attendance(db, session: dict) -> dict:
    """Checked in / expected for one session, in total and by role."""
    expected = expected_count(db, session["cohort_id"])
    present = dict(db.execute(
        "select p.role, count(*) from attendance a join participants p on p.id = a.participant_id"
        " where a.session_id = ? group by p.role", [session["id"]]).fetchall())
    by_role = {r: {"checked_in": present.get(r, 0), "expected": expected.get(r, 0)} for r in ROLES
               if expected.get(r) or present.get(r)}
    return {"checked_in": sum(present.values()), "expected": sum(expected.values()), "by_role": by_role}


def session_counts(db, sessions: list[dict]) -> list[dict]:
    """Each session with its attendance counts."""
    return [{**s, **session_attendance(db, s)} for s in sessions]


def cohort_summaries(db, program_id: str) -> list[dict]:
    """Each cohort of a program with its head count and session days."""
    return list(db.query(
        "select c.*, (select count(*) from participants p where p.cohort_id = c.id and p.status = 'active') as people,"
        " (select count(*) from sessions s where s.cohort_id = c.id and s.status != 'removed') as session_count,"
        " (select name from sites where sites.id = c.site_id) as site_name"
        " from cohorts c where c.program_id = ? order by c.number", [program_id]))


def cohort_size(db, cohort_id: str) -> int:
    """Everyone in a cohort, whatever their status."""
    return db.execute("select count(*) from participants where cohort_id = ?", [cohort_id]).fetchone()[0]


def _matches(person: dict, query: str) -> bool:
    """Any part of the name, or the phone's whole number or last four digits (as at the door)."""
    digits = re.sub(r"\D", "", query)
    if digits and digits == re.sub(r"[\s-]", "", query):
        phone = person.get("phone") or ""
        return len(digits) >= 4 and (phone == digits or (len(digits) == 4 and phone.endswith(digits)))
    return query.lower() in person["name"].lower()


def cohort_people(db, cohort_id: str, query: str = "") -> list[dict]:
    """A cohort's people with their area label and number of sessions attended (with `query`, only
    those whose name or phone matches it)."""
    rows = db.query(
        "select p.*, (select count(*) from attendance a join sessions s on s.id = a.session_id"
        " where a.participant_id = p.id and s.status != 'removed') as attended,"
        " (select code from badges b where b.participant_id = p.id and b.revoked_at is null) as code"
        " from participants p where p.cohort_id = ? order by p.role = 'participant' desc, p.district_code,"
        " p.first_name", [cohort_id])
    people = [{**p, "name": full_name(p), "area": area_label(p["province_code"], p["district_code"],
                                                              p["subdistrict_code"], short=True)} for p in rows]
    query = clean_text(query)
    return [p for p in people if _matches(p, query)] if query else people


def target_progress(db, program_id: str) -> list[dict]:
    """Each target with the number of distinct people who attended at least one session."""
    out = []
    for t in db.query("select * from targets where program_id = ?", [program_id]):
        sql = ("select count(distinct a.participant_id) from attendance a join participants p on"
               " p.id = a.participant_id where p.program_id = ?")
        args = [program_id]
        if t["cohort_id"]:
            sql += " and p.cohort_id = ?"
            args.append(t["cohort_id"])
        if t["role"]:
            sql += " and p.role = ?"
            args.append(t["role"])
        if t["area_code"]:
            column = {2: "province_code", 4: "district_code", 6: "subdistrict_code"}[len(t["area_code"])]
            sql += f" and p.{column} = ?"
            args.append(t["area_code"])
        done = db.execute(sql, args).fetchone()[0]
        percent = round(100 * done / t["expected"]) if t["expected"] else 100
        out.append({**t, "attended": done, "percent": percent})
    return out


def attendance_of(db, participant_id: str) -> list[dict]:
    """A person's sessions with when they came and left (None when absent)."""
    return list(db.query(
        "select s.id as session_id, s.day, s.slot, s.opens_at, s.closes_at, a.first_at, a.last_out_at,"
        " sc.via from participants p"
        " join sessions s on s.cohort_id = p.cohort_id and s.status != 'removed' left join attendance a on a.session_id = s.id"
        " and a.participant_id = p.id left join scans sc on sc.id = a.first_scan_id"
        " where p.id = ? order by s.day, s.opens_at", [participant_id]))
