"""Attendance against targets, over a `Dataset`: per session, day, area and role; the grid.

"Attended" for a person means at least one session of their cohort; a session counts a person
once however many devices scanned them. Paper check-ins (rows of a signature sheet scanned
back) count as attendance and are also given apart (`paper`), never mixed into `door`.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from kiosk.reports.rows import AREA_LEVELS, Dataset, area_name, display_name, level_of, percent, session_label
from kiosk.thai import ROLE_NAMES_TH, ROLES, thai_sort_key


def by_session(data: Dataset) -> list[dict]:
    """Per session: people present (door / paper), expected (active people of the cohort), percent."""
    expected = Counter(p.get("cohort_id") for p in data.active)
    active = {p["id"] for p in data.active}
    door, paper = Counter(), Counter()
    for a in data.attendance:
        if a["participant_id"] in active:
            (paper if a.get("via") == "paper" else door)[a["session_id"]] += 1
    rows = []
    for s in data.ordered_sessions:
        present = door[s["id"]] + paper[s["id"]]
        want = expected[s["cohort_id"]]
        rows.append({"session_id": s["id"], "cohort": data.cohort(s["cohort_id"]).get("number"), "day": s["day"],
                     "slot": s.get("slot") or "day", "present": present, "door": door[s["id"]],
                     "paper": paper[s["id"]], "expected": want, "percent": percent(present, want)})
    return rows


def by_day(data: Dataset) -> list[dict]:
    """Per cohort and day: people present at one session of that day or more, of those expected."""
    expected = Counter(p.get("cohort_id") for p in data.active)
    day_of = {s["id"]: (s["cohort_id"], s["day"]) for s in data.sessions}
    active = {p["id"] for p in data.active}
    present: dict[tuple, set] = defaultdict(set)
    for a in data.attendance:
        if a["participant_id"] in active and a["session_id"] in day_of:
            present[day_of[a["session_id"]]].add(a["participant_id"])
    keys = sorted({day_of[s["id"]] for s in data.sessions},
                  key=lambda k: (data.cohort(k[0]).get("number") or 0, k[1]))
    return [{"cohort": data.cohort(c).get("number"), "day": day, "present": len(present[(c, day)]),
             "expected": expected[c], "percent": percent(len(present[(c, day)]), expected[c])} for c, day in keys]


def _attended_ids(data: Dataset) -> set[str]:
    return {a["participant_id"] for a in data.attendance}


def _complete_ids(data: Dataset) -> set[str]:
    return {p["id"] for p in data.active if data.sessions_for(p) and len(data.attended(p)) == len(data.sessions_for(p))}


def by_area(data: Dataset, level: str = "district") -> list[dict]:
    """Per area at `level`: registered, attended (one session or more), attended every session,
    the target for that area (sum of area targets) and percent of target (else of registered)."""
    if level not in AREA_LEVELS:
        raise ValueError(f"level is one of {AREA_LEVELS}")
    attended, complete = _attended_ids(data), _complete_ids(data)
    groups: dict[str | None, list[dict]] = defaultdict(list)
    for p in data.active:
        if p.get("role") == "participant":
            groups[p.get(f"{level}_code")].append(p)
    goal = Counter()
    for t in data.targets:
        if level_of(t.get("area_code")) == level:
            goal[t["area_code"]] += int(t["expected"])
    rows = []
    for code in set(groups) | set(goal):
        people = groups.get(code, [])
        came = sum(p["id"] in attended for p in people)
        rows.append({"area_code": code, "area": area_name(code) or "ไม่ระบุพื้นที่", "registered": len(people),
                     "attended": came, "complete": sum(p["id"] in complete for p in people),
                     "target": goal.get(code) or None,
                     "percent": percent(came, goal.get(code) or len(people))})
    return sorted(rows, key=lambda r: (thai_sort_key(r["area"]), r["area_code"] or ""))


def by_role(data: Dataset) -> list[dict]:
    """Per role: registered, attended, every session, the role's target and percent."""
    attended, complete = _attended_ids(data), _complete_ids(data)
    goal = Counter()
    for t in data.targets:
        if t.get("role") and not t.get("area_code"):
            goal[t["role"]] += int(t["expected"])
    rows = []
    for role in ROLES:
        people = [p for p in data.active if p.get("role") == role]
        if not people and not goal.get(role):
            continue
        came = sum(p["id"] in attended for p in people)
        rows.append({"role": role, "role_name": ROLE_NAMES_TH[role], "registered": len(people), "attended": came,
                     "complete": sum(p["id"] in complete for p in people), "target": goal.get(role) or None,
                     "percent": percent(came, goal.get(role) or len(people))})
    return rows


def against_targets(data: Dataset) -> list[dict]:
    """Each target with the distinct active people matching it who attended, and percent reached."""
    attended = _attended_ids(data)
    rows = []
    for t in data.targets:
        code, level = t.get("area_code"), level_of(t.get("area_code"))
        people = [p for p in data.active if (not t.get("cohort_id") or p.get("cohort_id") == t["cohort_id"])
                  and (not t.get("role") or p.get("role") == t["role"])
                  and (not code or p.get(f"{level}_code") == code)]
        came = sum(p["id"] in attended for p in people)
        rows.append({**t, "cohort": data.cohort(t.get("cohort_id")).get("number"), "area": area_name(code),
                     "attended": came, "percent": percent(came, int(t["expected"]))})
    return rows


def totals(data: Dataset) -> dict:
    """The headline numbers: registered, attended, complete, person-sessions and percent."""
    attended, complete = _attended_ids(data), _complete_ids(data)
    possible = sum(len(data.sessions_for(p)) for p in data.active)
    active = {p["id"] for p in data.active}
    marks = [a for a in data.attendance if a["participant_id"] in active]
    return {"registered": len(data.active), "attended": len(attended & active), "complete": len(complete),
            "sessions": len(data.sessions), "marks": len(marks), "possible": possible,
            "paper": sum(a.get("via") == "paper" for a in marks), "percent": percent(len(marks), possible)}


def grid(data: Dataset) -> dict:
    """The participants × sessions grid: one row per person, a mark per session ("door", "paper",
    None when absent). One cohort: a column per session, headed by its date. Several cohorts
    (venues): a column per session *number* of each person's own cohort ("ช่วงที่ 1" …), so a
    cross-venue grid stays as narrow as one cohort's ("" where a cohort has fewer sessions)."""
    own = data.sessions_of_cohort
    single = len(own) <= 1
    width = max((len(v) for v in own.values()), default=0)
    columns = ([session_label(s) for s in data.ordered_sessions] if single
               else [f"ช่วงที่ {k}" for k in range(1, width + 1)])
    rows = []
    for p in data.active:
        mine = own.get(p.get("cohort_id"), [])
        marks = [_mark(data, p, s) for s in mine] + [""] * (width - len(mine))
        count = sum(m in ("door", "paper") for m in marks)
        rows.append({"id": p["id"], "name": display_name(p), "role": p.get("role"),
                     "cohort": data.cohort(p.get("cohort_id")).get("number"),
                     "province": area_name(p.get("province_code")), "district": area_name(p.get("district_code")),
                     "subdistrict": area_name(p.get("subdistrict_code")), "position": p.get("position") or "",
                     "organization": p.get("organization") or "", "marks": marks, "attended": count,
                     "percent": percent(count, len(mine))})
    return {"columns": columns, "rows": rows}


def _mark(data: Dataset, person: dict, session: dict) -> str | None:
    found = data.marks.get((person["id"], session["id"]))
    return None if found is None else (found.get("via") or "door")
