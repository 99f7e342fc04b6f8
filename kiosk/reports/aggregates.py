"""Attendance against targets as SQL aggregates: one SQL text for a kiosk's SQLite and the central
server's SQLite or PostgreSQL, whose tables share the kiosk's names and columns.

The numbers are those of `kiosk.reports.attendance` over a `Dataset` (tests hold the two equal on
both servers), but the database counts: one GROUP BY gives, per (cohort, role, area), the active
people, those who came, those who came to every session of their cohort, their marks and the
marks possible; per-session and per-day counts are two more. Python then only adds up those
groups (at most cohorts × roles × subdistricts) and the targets. Nothing here reads a person.

A `Reader` runs the SQL: `run(sql, params)` gives rows as dicts (named `:params`), and
`live(alias)` is the condition that keeps a row not deleted (central keeps deleted rows,
marked; a kiosk removes them: "").
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Callable

from kiosk.reports.rows import AREA_LEVELS, SLOT_ORDER, area_name, level_of, percent
from kiosk.thai import ROLE_NAMES_TH, ROLES, thai_sort_key

GROUP = ("cohort_id", "role", "province_code", "district_code", "subdistrict_code")


@dataclass(frozen=True)
class Reader:
    """How a server runs the report SQL (see the module's text)."""

    run: Callable[[str, dict], list[dict]]
    live: Callable[[str], str] = lambda alias: ""


@dataclass(frozen=True)
class Selection:
    """A program, optionally cut to one cohort and the people of one province."""

    program_id: str
    cohort_id: str | None = None
    province_code: str | None = None

    def params(self) -> dict:
        return {"program": self.program_id, "cohort": self.cohort_id, "province": self.province_code}

    def people(self, reader: Reader, alias: str = "p") -> str:
        """The WHERE of the active people selected."""
        where = f"{alias}.program_id = :program and {alias}.status = 'active'{reader.live(alias)}"
        where += f" and {alias}.cohort_id = :cohort" if self.cohort_id else ""
        return where + (f" and {alias}.province_code = :province" if self.province_code else "")

    def sessions(self, reader: Reader, alias: str = "s") -> str:
        where = f"{alias}.program_id = :program{reader.live(alias)}"
        return where + (f" and {alias}.cohort_id = :cohort" if self.cohort_id else "")


def _groups(reader: Reader, sel: Selection) -> list[dict]:
    """Per (cohort, role, area): registered, came, came to every own session, marks, paper, possible."""
    sql = f"""
        with own as (select s.cohort_id, count(*) as n from sessions s where {sel.sessions(reader)}
                     group by s.cohort_id),
        came as (select a.participant_id, count(*) as marks,
                        sum(case when sc.via = 'paper' then 1 else 0 end) as paper,
                        sum(case when s.cohort_id = p.cohort_id then 1 else 0 end) as own_marks
                 from attendance a
                 join participants p on p.program_id = a.program_id and p.id = a.participant_id
                 join sessions s on s.program_id = a.program_id and s.id = a.session_id
                 left join scans sc on sc.program_id = a.program_id and sc.id = a.first_scan_id
                 where a.program_id = :program and {sel.people(reader)} and {sel.sessions(reader)}
                 group by a.participant_id)
        select p.cohort_id, p.role, p.province_code, p.district_code, p.subdistrict_code,
               count(*) as registered,
               sum(case when came.marks > 0 then 1 else 0 end) as attended,
               sum(case when own.n > 0 and came.own_marks = own.n then 1 else 0 end) as complete,
               coalesce(sum(came.marks), 0) as marks, coalesce(sum(came.paper), 0) as paper,
               coalesce(sum(own.n), 0) as possible
        from participants p left join came on came.participant_id = p.id
        left join own on own.cohort_id = p.cohort_id
        where {sel.people(reader)}
        group by p.cohort_id, p.role, p.province_code, p.district_code, p.subdistrict_code"""
    return [{k: (int(v) if k not in GROUP else v) for k, v in r.items()} for r in reader.run(sql, sel.params())]


def _sessions(reader: Reader, sel: Selection) -> list[dict]:
    """The selection's sessions in report order, each with its cohort's number."""
    rows = reader.run(f"""select s.id, s.cohort_id, c.number as cohort, s.day, s.slot, s.opens_at, s.closes_at,
                                 s.title from sessions s left join cohorts c on c.program_id = s.program_id
                                 and c.id = s.cohort_id where {sel.sessions(reader)}""", sel.params())
    return sorted(rows, key=lambda s: (s["cohort"] or 0, s["day"], SLOT_ORDER.get(s.get("slot"), 1),
                                       s.get("opens_at") or "", s["id"]))


def _targets(reader: Reader, sel: Selection) -> list[dict]:
    """The targets a `Dataset.restricted` to the selection keeps."""
    rows = reader.run(f"""select t.id, t.cohort_id, t.role, t.area_code, t.expected from targets t
                          where t.program_id = :program{reader.live('t')}""", sel.params())
    return [t for t in rows if (not sel.cohort_id or t["cohort_id"] in (sel.cohort_id, None))
            and (not sel.province_code or (t["area_code"] or "").startswith(sel.province_code))]


def _present(reader: Reader, sel: Selection) -> tuple[list[dict], list[dict]]:
    """Per session (present, paper) and per (cohort, day) the people present at one session or more."""
    joins = f"""from attendance a join participants p on p.program_id = a.program_id and p.id = a.participant_id
                join sessions s on s.program_id = a.program_id and s.id = a.session_id
                where a.program_id = :program and {sel.people(reader)} and {sel.sessions(reader)}"""
    per_session = reader.run(f"""select a.session_id, count(*) as present,
        sum(case when exists (select 1 from scans sc where sc.program_id = a.program_id and sc.id = a.first_scan_id
                              and sc.via = 'paper') then 1 else 0 end) as paper {joins} group by a.session_id""",
                             sel.params())
    per_day = reader.run(f"""select s.cohort_id, s.day, count(distinct a.participant_id) as present {joins}
                             group by s.cohort_id, s.day""", sel.params())
    return per_session, per_day


def summary(reader: Reader, sel: Selection, level: str | None = None) -> dict:
    """Everything the attendance page shows: totals, per session, day, role, area (at `level`,
    else districts when everyone shares a province, provinces otherwise) and target."""
    groups, sessions, targets = _groups(reader, sel), _sessions(reader, sel), _targets(reader, sel)
    per_session, per_day = _present(reader, sel)
    level = level or ("district" if len({g["province_code"] for g in groups}) <= 1 else "province")
    return {"totals": totals(groups, sessions), "sessions": by_session(groups, sessions, per_session),
            "days": by_day(groups, sessions, per_day), "roles": by_role(groups, targets),
            "areas": by_area(groups, targets, level), "area_level": level,
            "targets": against_targets(groups, targets, cohort_numbers(reader, sel)), "session_rows": sessions}


def cohort_numbers(reader: Reader, sel: Selection) -> dict[str, int]:
    """The selection's cohorts: id -> number."""
    where = f"c.program_id = :program{reader.live('c')}" + (" and c.id = :cohort" if sel.cohort_id else "")
    return {r["id"]: r["number"] for r in reader.run(f"select c.id, c.number from cohorts c where {where}", sel.params())}


def totals(groups: list[dict], sessions: list[dict]) -> dict:
    """The headline numbers (`attendance.totals`)."""
    add = {k: sum(g[k] for g in groups) for k in ("registered", "attended", "complete", "marks", "possible", "paper")}
    return {**add, "sessions": len(sessions), "percent": percent(add["marks"], add["possible"])}


def by_session(groups: list[dict], sessions: list[dict], present: list[dict]) -> list[dict]:
    """Per session: present (door / paper), expected, percent (`attendance.by_session`)."""
    expected = Counter()
    for g in groups:
        expected[g["cohort_id"]] += g["registered"]
    found = {r["session_id"]: r for r in present}
    rows = []
    for s in sessions:
        here = found.get(s["id"], {})
        came, paper = int(here.get("present") or 0), int(here.get("paper") or 0)
        rows.append({"session_id": s["id"], "cohort": s["cohort"], "day": s["day"], "slot": s.get("slot") or "day",
                     "present": came, "door": came - paper, "paper": paper, "expected": expected[s["cohort_id"]],
                     "percent": percent(came, expected[s["cohort_id"]])})
    return rows


def by_day(groups: list[dict], sessions: list[dict], present: list[dict]) -> list[dict]:
    """Per cohort and day: people present at one session of that day or more (`attendance.by_day`)."""
    expected = Counter()
    for g in groups:
        expected[g["cohort_id"]] += g["registered"]
    came = {(r["cohort_id"], r["day"]): int(r["present"]) for r in present}
    number = {s["cohort_id"]: s["cohort"] for s in sessions}
    keys = sorted({(s["cohort_id"], s["day"]) for s in sessions}, key=lambda k: (number[k[0]] or 0, k[1]))
    return [{"cohort": number[c], "day": day, "present": came.get((c, day), 0), "expected": expected[c],
             "percent": percent(came.get((c, day), 0), expected[c])} for c, day in keys]


def by_role(groups: list[dict], targets: list[dict]) -> list[dict]:
    """Per role: registered, came, every session, target, percent (`attendance.by_role`)."""
    goal = Counter()
    for t in targets:
        if t.get("role") and not t.get("area_code"):
            goal[t["role"]] += int(t["expected"])
    rows = []
    for role in ROLES:
        mine = [g for g in groups if g["role"] == role]
        registered = sum(g["registered"] for g in mine)
        if not registered and not goal.get(role):
            continue
        came = sum(g["attended"] for g in mine)
        rows.append({"role": role, "role_name": ROLE_NAMES_TH[role], "registered": registered, "attended": came,
                     "complete": sum(g["complete"] for g in mine), "target": goal.get(role) or None,
                     "percent": percent(came, goal.get(role) or registered)})
    return rows


def by_area(groups: list[dict], targets: list[dict], level: str = "district") -> list[dict]:
    """Per area of participants at `level` (`attendance.by_area`)."""
    if level not in AREA_LEVELS:
        raise ValueError(f"level is one of {AREA_LEVELS}")
    counts: dict[str | None, list[int]] = defaultdict(lambda: [0, 0, 0])
    for g in groups:
        if g["role"] == "participant":
            for i, k in enumerate(("registered", "attended", "complete")):
                counts[g[f"{level}_code"]][i] += g[k]
    goal = Counter()
    for t in targets:
        if level_of(t.get("area_code")) == level:
            goal[t["area_code"]] += int(t["expected"])
    rows = []
    for code in set(counts) | set(goal):
        registered, came, complete = counts.get(code, [0, 0, 0])
        rows.append({"area_code": code, "area": area_name(code) or "ไม่ระบุพื้นที่", "registered": registered,
                     "attended": came, "complete": complete, "target": goal.get(code) or None,
                     "percent": percent(came, goal.get(code) or registered)})
    return sorted(rows, key=lambda r: (thai_sort_key(r["area"]), r["area_code"] or ""))


def against_targets(groups: list[dict], targets: list[dict], numbers: dict) -> list[dict]:
    """Each target with the active people matching it who came (`attendance.against_targets`)."""
    rows = []
    for t in targets:
        code, level = t.get("area_code"), level_of(t.get("area_code"))
        came = sum(g["attended"] for g in groups
                   if (not t.get("cohort_id") or g["cohort_id"] == t["cohort_id"])
                   and (not t.get("role") or g["role"] == t["role"]) and (not code or g[f"{level}_code"] == code))
        rows.append({**t, "cohort": numbers.get(t.get("cohort_id")), "area": area_name(code), "attended": came,
                     "percent": percent(came, int(t["expected"]))})
    return rows


def provinces(reader: Reader, program_id: str) -> list[tuple[str, str]]:
    """(code, name) of the provinces a program's people come from, for the filter."""
    rows = reader.run(f"""select distinct p.province_code from participants p where p.program_id = :program
                          and p.province_code is not null{reader.live('p')}""", {"program": program_id})
    return [(r["province_code"], area_name(r["province_code"])) for r in sorted(rows, key=lambda r: r["province_code"])]


def program_row(reader: Reader, program_id: str) -> dict | None:
    """A program's row as the reports read it (never its key), or None."""
    rows = reader.run(f"""select p.id, p.title, p.organizer, p.fiscal_year, p.certificate_rule, p.allowance_rate
                          from programs p where p.program_id = :program and p.id = :program{reader.live('p')}""",
                      {"program": program_id})
    return rows[0] if rows else None


def cohort_id(reader: Reader, program_id: str, number: int) -> str | None:
    """The id of a program's cohort by its number, or None."""
    return next((i for i, n in cohort_numbers(reader, Selection(program_id)).items() if n == number), None)


def people_count(reader: Reader, sel: Selection) -> int:
    """How many active people a selection holds."""
    return int(reader.run(f"select count(*) as n from participants p where {sel.people(reader)}", sel.params())[0]["n"])
