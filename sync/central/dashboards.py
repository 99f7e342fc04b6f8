"""Totals across venues, computed from the central read tables."""

from collections import Counter


def program_totals(storage) -> list[dict]:
    """Per program: participants and attendance per cohort and per site."""
    return [program_summary(storage, pid) for pid in sorted(storage.programs())]


def program_summary(storage, program_id: str) -> dict:
    program = storage.entity_rows(program_id, "programs").get(program_id, {})
    cohorts = storage.entity_rows(program_id, "cohorts")
    sites = storage.entity_rows(program_id, "sites")
    sessions = storage.entity_rows(program_id, "sessions")
    people = storage.entity_rows(program_id, "participants")
    attended = storage.attendance_by_session(program_id)
    per_cohort = Counter(p.get("cohort_id") for p in people.values() if p.get("status", "active") == "active")
    cohort_attendance, site_attendance = Counter(), Counter()
    for session_id, count in attended.items():
        session = sessions.get(session_id, {})
        cohort_attendance[session.get("cohort_id")] += count
        site_attendance[session.get("site_id") or cohorts.get(session.get("cohort_id"), {}).get("site_id")] += count
    return {
        "id": program_id, "title": program.get("title") or program_id,
        "participants": sum(per_cohort.values()), "attendance": sum(attended.values()),
        "cohorts": [{"id": cid, "number": c.get("number"), "title": c.get("title"),
                     "participants": per_cohort.get(cid, 0), "attendance": cohort_attendance.get(cid, 0)}
                    for cid, c in sorted(cohorts.items(), key=lambda kv: kv[1].get("number") or 0)],
        "sites": [{"id": sid, "name": s.get("name"), "attendance": site_attendance.get(sid, 0)}
                  for sid, s in sorted(sites.items())],
        "flagged_scans": len(storage.flagged_scans(program_id)),
    }
