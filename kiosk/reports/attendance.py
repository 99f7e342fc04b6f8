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


def cohort_target(targets: list[dict], cohort_id: str | None) -> int | None:
    """A cohort's head-count target: its target for everyone, else the sum of its role targets
    (areas aside); None when it has none."""
    mine = [t for t in targets if t.get("cohort_id") == cohort_id and not t.get("area_code")]
    whole = [int(t["expected"]) for t in mine if not t.get("role")]
    return sum(whole) if whole else (sum(int(t["expected"]) for t in mine) or None)


def _held(session: dict, today: date) -> bool:
    """A session on or before `today`: later ones are neither absences nor zero percent."""
    return session["day"] <= today.isoformat()


def session_row(session: dict, cohort: int | None, counts: dict[str, int], registered: int, target: int | None,
                today: date) -> dict:
    """One session's row: present (door / paper / by hand), the cohort's target, people registered
    (`expected`), and percent of them (None for a session still to come)."""
    present, held = sum(counts.values()), _held(session, today)
    return {"session_id": session["id"], "cohort": cohort, "day": session["day"], "slot": session.get("slot") or "day",
            "present": present, **counts, "expected": registered, "registered": registered, "target": target,
            "upcoming": not held, "percent": percent(present, registered) if held else None}


def day_row(cohort: int | None, day: str, present: int, registered: int, target: int | None, today: date) -> dict:
    """One cohort's day: people present at one session of it or more, as `session_row` counts."""
    held = day <= today.isoformat()
    return {"cohort": cohort, "day": day, "present": present, "expected": registered, "registered": registered,
            "target": target, "upcoming": not held, "percent": percent(present, registered) if held else None}


def by_session(data: Dataset, today: date | None = None) -> list[dict]:
    """Per session: `session_row` over the active people's attendance."""
    today = today or local_day()
    expected = Counter(p.get("cohort_id") for p in data.active)
    active = {p["id"] for p in data.active}
    how: dict[str, Counter] = {"door": Counter(), "paper": Counter(), "manual": Counter()}
    for a in data.attendance:
        if a["participant_id"] in active:
            how.get(a.get("via"), how["door"])[a["session_id"]] += 1
    return [session_row(s, data.cohort(s["cohort_id"]).get("number"), {via: how[via][s["id"]] for via in how},
                        expected[s["cohort_id"]], cohort_target(data.targets, s["cohort_id"]), today)
            for s in data.ordered_sessions]


def by_day(data: Dataset, today: date | None = None) -> list[dict]:
    """Per cohort and day: `day_row` over the active people's attendance."""
    today = today or local_day()
    expected = Counter(p.get("cohort_id") for p in data.active)
    day_of = {s["id"]: (s["cohort_id"], s["day"]) for s in data.sessions}
    active = {p["id"] for p in data.active}
    present: dict[tuple, set] = defaultdict(set)
    for a in data.attendance:
        if a["participant_id"] in active and a["session_id"] in day_of:
            present[day_of[a["session_id"]]].add(a["participant_id"])
    number = {c: data.cohort(c).get("number") for c, _day in day_of.values()}
    return [day_row(number[c], day, len(present[(c, day)]), expected[c], cohort_target(data.targets, c), today)
            for c, day in day_order(day_of.values(), number)]


def day_order(keys, number: dict) -> list[tuple]:
    """(cohort id, day) pairs once each, by cohort number, then day."""
    return sorted(set(keys), key=lambda k: (number.get(k[0]) or 0, k[1]))


def _attended_ids(data: Dataset) -> set[str]:
    return {a["participant_id"] for a in data.attendance}


def _complete_ids(data: Dataset) -> set[str]:
    return {p["id"] for p in data.active if data.sessions_for(p) and len(data.attended(p)) == len(data.sessions_for(p))}


def area_goals(targets: list[dict], level: str) -> dict[str, int]:
    """Participants' targets per area at `level`: the targets set at that level, else the sum of
    those set within it (district targets make their province's)."""
    exact, within = Counter(), Counter()
    depth = {lv: AREA_LEVELS.index(lv) for lv in AREA_LEVELS}
    for t in targets:
        code, at = t.get("area_code"), level_of(t.get("area_code"))
        if not at or t.get("role") not in (None, "", "participant"):
            continue
        if at == level:
            exact[code] += int(t["expected"])
        elif depth[at] > depth[level]:
            within[area_parts(code)[depth[level]]] += int(t["expected"])
    return {code: exact.get(code) or within[code] for code in set(exact) | set(within)}


def area_rows(counts: dict, targets: list[dict], level: str) -> list[dict]:
    """Per area at `level`, from (registered, attended, complete) participants per area code: the
    area's target (`area_goals`), percent of target and of registered, in place order. `area` is
    the area's own name, `label` it with its district and province."""
    if level not in AREA_LEVELS:
        raise ValueError(f"level is one of {AREA_LEVELS}")
    goal = area_goals(targets, level)
    rows = []
    for code in set(counts) | set(goal):
        registered, came, complete = counts.get(code, (0, 0, 0))
        name = area_name(code) or "ไม่ระบุพื้นที่"
        label = area_label(*area_parts(code)) if level != "province" else name
        rows.append({"area_code": code, "area": name, "label": label or name, "registered": registered,
                     "attended": came, "complete": complete, "target": goal.get(code) or None,
                     "percent": percent(came, goal.get(code) or 0), "percent_registered": percent(came, registered)})
    return sorted(rows, key=lambda r: (_place_key(r["area_code"]), r["area_code"] or ""))


def by_area(data: Dataset, level: str = "district") -> list[dict]:
    """Per area at `level`: participants registered, attended (one session or more), attended every
    session, against the area's target (`area_rows`)."""
    attended, complete = _attended_ids(data), _complete_ids(data)
    counts: dict[str | None, list[int]] = defaultdict(lambda: [0, 0, 0])
    for p in data.active:
        if p.get("role") == "participant":
            mine = counts[p.get(f"{level}_code")]
            mine[0], mine[1], mine[2] = mine[0] + 1, mine[1] + (p["id"] in attended), mine[2] + (p["id"] in complete)
    return area_rows(counts, data.targets, level)


def _place_key(code: str | None) -> tuple:
    """Thai order by province, then district, then subdistrict name; the unknown area last."""
    if not code:
        return ((chr(0x10FFFF), ""),)
    return tuple(thai_sort_key(area_name(part)) for part in area_parts(code) if part)


def level_for(targets: list[dict], provinces: set) -> str:
    """The area level a report shows first: the finest level a target is set at, else districts when
    the active people (of `provinces`) share a province, else provinces."""
    levels = {level_of(t.get("area_code")) for t in targets} - {None}
    for level in reversed(AREA_LEVELS):
        if level in levels:
            return level
    return "district" if len(provinces) <= 1 else "province"


def default_level(data: Dataset) -> str:
    """`level_for` a Dataset."""
    return level_for(data.targets, {p.get("province_code") for p in data.active})


def role_rows(counts: dict[str, tuple[int, int, int]], targets: list[dict]) -> list[dict]:
    """Per role, from (registered, attended, complete) people per role: the role's target and
    percent of it (and of those registered); a role with nobody and no target is left out."""
    goal = Counter()
    for t in targets:
        if t.get("role") and not t.get("area_code"):
            goal[t["role"]] += int(t["expected"])
    rows = []
    for role in ROLES:
        registered, came, complete = counts.get(role, (0, 0, 0))
        if not registered and not goal.get(role):
            continue
        rows.append({"role": role, "role_name": ROLE_NAMES_TH[role], "registered": registered, "attended": came,
                     "complete": complete, "target": goal.get(role) or None,
                     "percent": percent(came, goal.get(role) or 0), "percent_registered": percent(came, registered)})
    return rows


def by_role(data: Dataset) -> list[dict]:
    """Per role: registered, attended, every session, against the role's target (`role_rows`)."""
    attended, complete = _attended_ids(data), _complete_ids(data)
    counts = {}
    for role in ROLES:
        people = [p for p in data.active if p.get("role") == role]
        counts[role] = (len(people), sum(p["id"] in attended for p in people), sum(p["id"] in complete for p in people))
    return role_rows(counts, data.targets)


def target_row(target: dict, cohort: int | None, came: int) -> dict:
    """A target with the people matching it who came, and percent reached."""
    code = target.get("area_code")
    return {**target, "cohort": cohort, "area": area_name(code), "area_label": area_label(*area_parts(code)),
            "attended": came, "percent": percent(came, int(target["expected"]))}


def matches(target: dict, person: dict) -> bool:
    """Whether a person (or a group of people alike) counts for a target: its cohort, role and area."""
    code = target.get("area_code")
    return ((not target.get("cohort_id") or person.get("cohort_id") == target["cohort_id"])
            and (not target.get("role") or person.get("role") == target["role"])
            and (not code or person.get(f"{level_of(code)}_code") == code))


def against_targets(data: Dataset) -> list[dict]:
    """Each target with the distinct active people matching it who attended, and percent reached."""
    attended = _attended_ids(data)
    return [target_row(t, data.cohort(t.get("cohort_id")).get("number"),
                       sum(p["id"] in attended for p in data.active if matches(t, p))) for t in data.targets]


def totals_row(registered: int, attended: int, complete: int, sessions: int, marks: int, possible: int,
               paper: int, manual: int) -> dict:
    """The headline numbers, and percent of the person-sessions held so far."""
    return {"registered": registered, "attended": attended, "complete": complete, "sessions": sessions,
            "marks": marks, "possible": possible, "paper": paper, "manual": manual, "percent": percent(marks, possible)}


def totals(data: Dataset, today: date | None = None) -> dict:
    """The headline numbers: registered, attended, complete, person-sessions and percent of the
    person-sessions held so far (a session still to come is no absence)."""
    today = today or local_day()
    attended, complete = _attended_ids(data), _complete_ids(data)
    possible = sum(sum(_held(s, today) for s in data.sessions_for(p)) for p in data.active)
    active = {p["id"] for p in data.active}
    marks = [a for a in data.attendance if a["participant_id"] in active]
    return totals_row(len(data.active), len(attended & active), len(complete), len(data.sessions), len(marks),
                      possible, sum(a.get("via") == "paper" for a in marks), sum(a.get("via") == "manual" for a in marks))


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


def correction_row(correction: dict, person: dict, cohort: int | None, session: dict) -> dict:
    """A correction by hand as the report lists it: who it is about, the session, what, who did it,
    when and why."""
    keep = ("id", "participant_id", "session_id", "result", "operator", "at", "note")
    return {**{k: correction.get(k) for k in keep}, "name": display_name(person), "cohort": cohort,
            "session": session_label(session)}


def corrections(data: Dataset) -> list[dict]:
    """Attendance corrected by hand, oldest first (`correction_row`)."""
    people = {p["id"]: p for p in data.participants}
    sessions = {s["id"]: s for s in data.sessions}
    rows = []
    for c in sorted(data.corrections, key=lambda c: (c.get("at") or "", c.get("id") or "")):
        person, session = people.get(c["participant_id"]), sessions.get(c["session_id"])
        if person and session:
            rows.append(correction_row(c, person, data.cohort(person.get("cohort_id")).get("number"), session))
    return rows
