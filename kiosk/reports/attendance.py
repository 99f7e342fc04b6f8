"""Attendance against targets, over a `Dataset`: per session, day, area and role; the grid.

"Attended" for a person means at least one session of their cohort; a session counts a person
once however many devices scanned them. Paper check-ins (rows of a signature sheet scanned
back) count as attendance and are also given apart (`paper`), never mixed into `door`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date

from kiosk.clock import local_day
from kiosk.reports.rows import AREA_LEVELS, Dataset, area_name, display_name, level_of, percent, session_label
from kiosk.thai import ROLE_NAMES_TH, ROLES, area_label, area_parts, thai_sort_key


def cohort_target(data: Dataset, cohort_id: str | None) -> int | None:
    """A cohort's head-count target: its target for everyone, else the sum of its role targets
    (areas aside); None when it has none."""
    mine = [t for t in data.targets if t.get("cohort_id") == cohort_id and not t.get("area_code")]
    whole = [int(t["expected"]) for t in mine if not t.get("role")]
    return sum(whole) if whole else (sum(int(t["expected"]) for t in mine) or None)


def _held(session: dict, today: date) -> bool:
    """A session on or before `today`: later ones are neither absences nor zero percent."""
    return session["day"] <= today.isoformat()


def by_session(data: Dataset, today: date | None = None) -> list[dict]:
    """Per session: people present (door / paper / by hand), the cohort's target, people registered
    (active people of the cohort, `expected`), and percent of them (None for a session still to come)."""
    today = today or local_day()
    expected = Counter(p.get("cohort_id") for p in data.active)
    active = {p["id"] for p in data.active}
    how: dict[str, Counter] = {"door": Counter(), "paper": Counter(), "manual": Counter()}
    for a in data.attendance:
        if a["participant_id"] in active:
            how.get(a.get("via"), how["door"])[a["session_id"]] += 1
    rows = []
    for s in data.ordered_sessions:
        counts = {via: how[via][s["id"]] for via in how}
        present, want, held = sum(counts.values()), expected[s["cohort_id"]], _held(s, today)
        rows.append({"session_id": s["id"], "cohort": data.cohort(s["cohort_id"]).get("number"), "day": s["day"],
                     "slot": s.get("slot") or "day", "present": present, **counts, "expected": want,
                     "registered": want, "target": cohort_target(data, s["cohort_id"]), "upcoming": not held,
                     "percent": percent(present, want) if held else None})
    return rows


def by_day(data: Dataset, today: date | None = None) -> list[dict]:
    """Per cohort and day: people present at one session of that day or more, the cohort's target,
    people registered, and percent of them (None for a day still to come)."""
    today = today or local_day()
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
             "expected": expected[c], "registered": expected[c], "target": cohort_target(data, c),
             "upcoming": day > today.isoformat(),
             "percent": percent(len(present[(c, day)]), expected[c]) if day <= today.isoformat() else None}
            for c, day in keys]


def _attended_ids(data: Dataset) -> set[str]:
    return {a["participant_id"] for a in data.attendance}


def _complete_ids(data: Dataset) -> set[str]:
    return {p["id"] for p in data.active if data.sessions_for(p) and len(data.attended(p)) == len(data.sessions_for(p))}


def area_goals(data: Dataset, level: str) -> dict[str, int]:
    """Participants' targets per area at `level`: the targets set at that level, else the sum of
    those set within it (district targets make their province's)."""
    exact, within = Counter(), Counter()
    depth = {lv: AREA_LEVELS.index(lv) for lv in AREA_LEVELS}
    for t in data.targets:
        code, at = t.get("area_code"), level_of(t.get("area_code"))
        if not at or t.get("role") not in (None, "", "participant"):
            continue
        if at == level:
            exact[code] += int(t["expected"])
        elif depth[at] > depth[level]:
            within[area_parts(code)[depth[level]]] += int(t["expected"])
    return {code: exact.get(code) or within[code] for code in set(exact) | set(within)}


def by_area(data: Dataset, level: str = "district") -> list[dict]:
    """Per area at `level`: participants registered, attended (one session or more), attended every
    session, the area's target (`area_goals`) and percent of target (else of registered). `area` is
    the area's own name, `label` it with its district and province."""
    if level not in AREA_LEVELS:
        raise ValueError(f"level is one of {AREA_LEVELS}")
    attended, complete = _attended_ids(data), _complete_ids(data)
    groups: dict[str | None, list[dict]] = defaultdict(list)
    for p in data.active:
        if p.get("role") == "participant":
            groups[p.get(f"{level}_code")].append(p)
    goal = area_goals(data, level)
    rows = []
    for code in set(groups) | set(goal):
        people = groups.get(code, [])
        came = sum(p["id"] in attended for p in people)
        name = area_name(code) or "ไม่ระบุพื้นที่"
        label = area_label(*area_parts(code)) if level != "province" else name
        rows.append({"area_code": code, "area": name, "label": label or name,
                     "registered": len(people), "attended": came, "complete": sum(p["id"] in complete for p in people),
                     "target": goal.get(code) or None, "percent": percent(came, goal.get(code) or 0),
                     "percent_registered": percent(came, len(people))})
    return sorted(rows, key=lambda r: (_place_key(r["area_code"]), r["area_code"] or ""))


def _place_key(code: str | None) -> tuple:
    """Thai order by province, then district, then subdistrict name; the unknown area last."""
    if not code:
        return ((chr(0x10FFFF), ""),)
    return tuple(thai_sort_key(area_name(part)) for part in area_parts(code) if part)


def default_level(data: Dataset) -> str:
    """The area level a report shows first: the finest level a target is set at, else districts when
    everyone shares a province, else provinces."""
    levels = {level_of(t.get("area_code")) for t in data.targets} - {None}
    for level in reversed(AREA_LEVELS):
        if level in levels:
            return level
    return "district" if len({p.get("province_code") for p in data.active}) <= 1 else "province"


def by_role(data: Dataset) -> list[dict]:
    """Per role: registered, attended, every session, the role's target and percent of it (and of
    those registered)."""
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
                     "percent": percent(came, goal.get(role) or 0), "percent_registered": percent(came, len(people))})
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
                     "area_label": area_label(*area_parts(code)), "attended": came,
                     "percent": percent(came, int(t["expected"]))})
    return rows


def totals(data: Dataset, today: date | None = None) -> dict:
    """The headline numbers: registered, attended, complete, person-sessions and percent of the
    person-sessions held so far (a session still to come is no absence)."""
    today = today or local_day()
    attended, complete = _attended_ids(data), _complete_ids(data)
    possible = sum(sum(_held(s, today) for s in data.sessions_for(p)) for p in data.active)
    active = {p["id"] for p in data.active}
    marks = [a for a in data.attendance if a["participant_id"] in active]
    return {"registered": len(data.active), "attended": len(attended & active), "complete": len(complete),
            "sessions": len(data.sessions), "marks": len(marks), "possible": possible,
            "paper": sum(a.get("via") == "paper" for a in marks), "manual": sum(a.get("via") == "manual" for a in marks),
            "percent": percent(len(marks), possible)}


def grid(data: Dataset, today: date | None = None) -> dict:
    """The participants × sessions grid: one row per person, a mark per session ("door", "paper",
    "manual", None when absent, "later" for a session still to come). One cohort: a column per
    session, headed by its date. Several cohorts (venues): a column per session *number* of each
    person's own cohort ("ช่วงที่ 1" …), so a cross-venue grid stays as narrow as one cohort's ("" where
    a cohort has fewer sessions). A person's percent counts the sessions held so far."""
    today = today or local_day()
    own = data.sessions_of_cohort
    single = len(own) <= 1
    width = max((len(v) for v in own.values()), default=0)
    columns = ([session_label(s) for s in data.ordered_sessions] if single
               else [f"ช่วงที่ {k}" for k in range(1, width + 1)])
    rows = []
    for p in data.active:
        mine = own.get(p.get("cohort_id"), [])
        marks = [_mark(data, p, s, today) for s in mine] + [""] * (width - len(mine))
        count = sum(m in ("door", "paper", "manual") for m in marks)
        rows.append({"id": p["id"], "name": display_name(p), "role": p.get("role"),
                     "cohort": data.cohort(p.get("cohort_id")).get("number"),
                     "province": area_name(p.get("province_code")), "district": area_name(p.get("district_code")),
                     "subdistrict": area_name(p.get("subdistrict_code")), "position": p.get("position") or "",
                     "organization": p.get("organization") or "", "marks": marks, "attended": count,
                     "percent": percent(count, sum(_held(s, today) for s in mine))})
    return {"columns": columns, "rows": rows}


def _mark(data: Dataset, person: dict, session: dict, today: date) -> str | None:
    found = data.marks.get((person["id"], session["id"]))
    if found is None:
        return None if _held(session, today) else "later"
    return found.get("via") or "door"


def corrections(data: Dataset) -> list[dict]:
    """Attendance corrected by hand, oldest first: who it is about, the session, what, who did it,
    when and why."""
    people = {p["id"]: p for p in data.participants}
    sessions = {s["id"]: s for s in data.sessions}
    rows = []
    for c in sorted(data.corrections, key=lambda c: (c.get("at") or "", c.get("id") or "")):
        person, session = people.get(c["participant_id"]), sessions.get(c["session_id"])
        if person and session:
            rows.append({**c, "name": display_name(person), "cohort": data.cohort(person.get("cohort_id")).get("number"),
                         "session": session_label(session)})
    return rows
