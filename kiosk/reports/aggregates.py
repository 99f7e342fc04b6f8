"""Attendance against targets as SQL aggregates: one SQL text for a kiosk's SQLite and the central
server's SQLite or PostgreSQL, whose tables share the kiosk's names and columns.

The numbers are those of `kiosk.reports.attendance` over a `Dataset` (tests hold the two equal on
both servers), but the database counts: one GROUP BY gives, per (cohort, role, area), the active
people, those who came, those who came to every session of their cohort, their marks (on paper,
by hand) and the marks possible so far; per-session and per-day counts are two more. Python then
only adds up those groups (at most cohorts × roles × subdistricts) and the targets, with the
rules of `kiosk.reports.attendance`. Nothing here reads a person, but for the corrections made
by hand (a coordinator's few).

A session a coordinator removed counts nowhere; a session still to come is neither an absence
nor a zero percent.

A `Reader` runs the SQL: `run(sql, params)` gives rows as dicts (named `:params`), and
`live(alias)` is the condition that keeps a row not deleted (central keeps deleted rows,
marked, and placeholders of people not arrived yet; a kiosk removes them: "").
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Callable

from kiosk.clock import local_day
from kiosk.reports import attendance as att
from kiosk.reports.rows import AREA_LEVELS, SLOT_ORDER, area_name
from kiosk.thai import ROLES

GROUP = ("cohort_id", "role", "province_code", "district_code", "subdistrict_code")
COUNTS = ("registered", "attended", "complete", "marks", "paper", "manual", "possible")


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

    def params(self, today: date | None = None) -> dict:
        return {"program": self.program_id, "cohort": self.cohort_id, "province": self.province_code,
                "today": (today or local_day()).isoformat()}

    def everyone(self, reader: Reader, alias: str = "p") -> str:
        """The WHERE of the people selected, whatever their status."""
        where = f"{alias}.program_id = :program{reader.live(alias)}"
        where += f" and {alias}.cohort_id = :cohort" if self.cohort_id else ""
        return where + (f" and {alias}.province_code = :province" if self.province_code else "")

    def people(self, reader: Reader, alias: str = "p") -> str:
        """The WHERE of the active people selected."""
        return f"{self.everyone(reader, alias)} and {alias}.status = 'active'"

    def sessions(self, reader: Reader, alias: str = "s") -> str:
        """The WHERE of the sessions selected (a removed one counts nowhere)."""
        where = f"{alias}.program_id = :program{reader.live(alias)} and coalesce({alias}.status, 'active') != 'removed'"
        return where + (f" and {alias}.cohort_id = :cohort" if self.cohort_id else "")


def _groups(reader: Reader, sel: Selection, today: date) -> list[dict]:
    """Per (cohort, role, area): registered, came, came to every own session, marks (paper, by
    hand), and the marks possible in the sessions held so far."""
    sql = f"""
        with own as (select s.cohort_id, count(*) as n, sum(case when s.day <= :today then 1 else 0 end) as held
                     from sessions s where {sel.sessions(reader)} group by s.cohort_id),
        came as (select a.participant_id, count(*) as marks,
                        sum(case when sc.via = 'paper' then 1 else 0 end) as paper,
                        sum(case when sc.via = 'manual' then 1 else 0 end) as manual,
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
               coalesce(sum(came.manual), 0) as manual, coalesce(sum(own.held), 0) as possible
        from participants p left join came on came.participant_id = p.id
        left join own on own.cohort_id = p.cohort_id
        where {sel.people(reader)}
        group by p.cohort_id, p.role, p.province_code, p.district_code, p.subdistrict_code"""
    return [{k: (int(v) if k not in GROUP else v) for k, v in r.items()} for r in reader.run(sql, sel.params(today))]


def _sessions(reader: Reader, sel: Selection) -> list[dict]:
    """The selection's sessions in report order, each with its cohort's number."""
    rows = reader.run(f"""select s.id, s.cohort_id, c.number as cohort, s.day, s.slot, s.opens_at, s.closes_at,
                                 s.title from sessions s left join cohorts c on c.program_id = s.program_id
                                 and c.id = s.cohort_id where {sel.sessions(reader)}""", sel.params())
    return sorted(rows, key=lambda s: (s["cohort"] or 0, s["day"], SLOT_ORDER.get(s.get("slot"), 1),
                                       s.get("opens_at") or "", s["id"]))


def _targets(reader: Reader, sel: Selection) -> list[dict]:
    """The targets a `Dataset.restricted` to the selection keeps (a cohort's own only: a
    program-wide target has no place in one cohort's tables)."""
    rows = reader.run(f"""select t.id, t.cohort_id, t.role, t.area_code, t.expected from targets t
                          where t.program_id = :program{reader.live('t')}""", sel.params())
    return [t for t in rows if (not sel.cohort_id or t["cohort_id"] == sel.cohort_id)
            and (not sel.province_code or (t["area_code"] or "").startswith(sel.province_code))]


def _present(reader: Reader, sel: Selection) -> tuple[list[dict], list[dict]]:
    """Per session (present, paper, by hand) and per (cohort, day) the people present at one
    session or more."""
    joins = f"""from attendance a join participants p on p.program_id = a.program_id and p.id = a.participant_id
                join sessions s on s.program_id = a.program_id and s.id = a.session_id
                where a.program_id = :program and {sel.people(reader)} and {sel.sessions(reader)}"""
    per_session = reader.run(f"""select a.session_id, count(*) as present,
        sum(case when sc.via = 'paper' then 1 else 0 end) as paper,
        sum(case when sc.via = 'manual' then 1 else 0 end) as manual
        from attendance a join participants p on p.program_id = a.program_id and p.id = a.participant_id
        join sessions s on s.program_id = a.program_id and s.id = a.session_id
        left join scans sc on sc.program_id = a.program_id and sc.id = a.first_scan_id
        where a.program_id = :program and {sel.people(reader)} and {sel.sessions(reader)}
        group by a.session_id""", sel.params())
    per_day = reader.run(f"""select s.cohort_id, s.day, count(distinct a.participant_id) as present {joins}
                             group by s.cohort_id, s.day""", sel.params())
    return per_session, per_day


def _corrections(reader: Reader, sel: Selection) -> list[dict]:
    """The corrections by hand of the people and sessions selected, oldest first."""
    rows = reader.run(f"""select x.id, x.participant_id, x.session_id, x.result, x.operator, x.at, x.note,
                                 p.title, p.first_name, p.last_name, c.number as cohort, s.day, s.slot
        from scans x join participants p on p.program_id = x.program_id and p.id = x.participant_id
        join sessions s on s.program_id = x.program_id and s.id = x.session_id
        left join cohorts c on c.program_id = p.program_id and c.id = p.cohort_id{reader.live('c')}
        where x.program_id = :program and x.via = 'manual' and {sel.everyone(reader)} and {sel.sessions(reader)}
        order by x.at, x.id""", sel.params())
    return [att.correction_row(r, r, r["cohort"], r) for r in rows]


def summary(reader: Reader, sel: Selection, level: str | None = None, today: date | None = None) -> dict:
    """Everything the attendance page shows: totals, per session, day, role, area (at `level`, else
    the report's own: `attendance.level_for`) and target, and the corrections made by hand."""
    today = today or local_day()
    groups, sessions, targets = _groups(reader, sel, today), _sessions(reader, sel), _targets(reader, sel)
    per_session, per_day = _present(reader, sel)
    level = level if level in AREA_LEVELS else att.level_for(targets, {g["province_code"] for g in groups})
    return {"totals": totals(groups, sessions), "sessions": by_session(groups, sessions, targets, per_session, today),
            "days": by_day(groups, sessions, targets, per_day, today), "roles": by_role(groups, targets),
            "areas": by_area(groups, targets, level), "area_level": level,
            "targets": against_targets(groups, targets, cohort_numbers(reader, sel)),
            "corrections": _corrections(reader, sel), "session_rows": sessions}


def cohort_numbers(reader: Reader, sel: Selection) -> dict[str, int]:
    """The selection's cohorts: id -> number."""
    where = f"c.program_id = :program{reader.live('c')}" + (" and c.id = :cohort" if sel.cohort_id else "")
    return {r["id"]: r["number"] for r in reader.run(f"select c.id, c.number from cohorts c where {where}", sel.params())}


def totals(groups: list[dict], sessions: list[dict]) -> dict:
    """The headline numbers (`attendance.totals`)."""
    add = {k: sum(g[k] for g in groups) for k in COUNTS}
    return att.totals_row(sessions=len(sessions), **add)


def _registered(groups: list[dict]) -> Counter:
    expected = Counter()
    for g in groups:
        expected[g["cohort_id"]] += g["registered"]
    return expected


def by_session(groups: list[dict], sessions: list[dict], targets: list[dict], present: list[dict],
               today: date) -> list[dict]:
    """Per session (`attendance.by_session`)."""
    expected, found = _registered(groups), {r["session_id"]: r for r in present}
    rows = []
    for s in sessions:
        here = found.get(s["id"], {})
        paper, manual = int(here.get("paper") or 0), int(here.get("manual") or 0)
        counts = {"door": int(here.get("present") or 0) - paper - manual, "paper": paper, "manual": manual}
        rows.append(att.session_row(s, s["cohort"], counts, expected[s["cohort_id"]],
                                    att.cohort_target(targets, s["cohort_id"]), today))
    return rows


def by_day(groups: list[dict], sessions: list[dict], targets: list[dict], present: list[dict],
           today: date) -> list[dict]:
    """Per cohort and day (`attendance.by_day`)."""
    expected = _registered(groups)
    came = {(r["cohort_id"], r["day"]): int(r["present"]) for r in present}
    number = {s["cohort_id"]: s["cohort"] for s in sessions}
    return [att.day_row(number[c], day, came.get((c, day), 0), expected[c], att.cohort_target(targets, c), today)
            for c, day in att.day_order([(s["cohort_id"], s["day"]) for s in sessions], number)]


def by_role(groups: list[dict], targets: list[dict]) -> list[dict]:
    """Per role (`attendance.by_role`)."""
    return att.role_rows({role: _added([g for g in groups if g["role"] == role]) for role in ROLES}, targets)


def _added(groups: list[dict]) -> tuple[int, int, int]:
    return tuple(sum(g[k] for g in groups) for k in ("registered", "attended", "complete"))


def by_area(groups: list[dict], targets: list[dict], level: str = "district") -> list[dict]:
    """Per area of participants at `level` (`attendance.by_area`)."""
    if level not in AREA_LEVELS:
        raise ValueError(f"level is one of {AREA_LEVELS}")
    mine: dict[str | None, list[dict]] = defaultdict(list)
    for g in groups:
        if g["role"] == "participant":
            mine[g[f"{level}_code"]].append(g)
    return att.area_rows({code: _added(found) for code, found in mine.items()}, targets, level)


def against_targets(groups: list[dict], targets: list[dict], numbers: dict) -> list[dict]:
    """Each target with the active people matching it who came (`attendance.against_targets`)."""
    return [att.target_row(t, numbers.get(t.get("cohort_id")), sum(g["attended"] for g in groups if att.matches(t, g)))
            for t in targets]


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
