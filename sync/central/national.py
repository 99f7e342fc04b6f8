"""The national dashboard: every program, then one program by province → district → subdistrict,
by cohort, session and role, against its targets; counted by the database.

Without a session, every count comes from `area_counts` (kept with each push: at most cohorts ×
roles × subdistricts rows, whatever the number of people). With a session, the people of its
cohort are counted with their attendance of that session (one cohort's people, by index).

A target counts for an area if it names the area; an area no target names takes the targets of
its sub-areas (a target of 15 per subdistrict makes a district's). Without a role or a cohort
chosen, targets that name none are taken, or, when there are none, those that do.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from sqlalchemy import and_, case, func, select

from kiosk.reports.rows import area_name, percent
from kiosk.thai import ROLES, thai_sort_key
from sync.central.storage.tables import area_counts, attendance, cohorts, participants, programs, sessions, targets

COLUMN_OF = {0: "province_code", 2: "district_code", 4: "subdistrict_code", 6: None}  # the level below an area
LEVEL_OF = {2: "province_code", 4: "district_code", 6: "subdistrict_code"}
BUCKETS = (25, 50, 75, 100)  # the map's colours: below 25 %, 50, 75, 100, and reached


@dataclass(frozen=True)
class View:
    """What a dashboard page shows: a program, an area ('' the country), and filters."""

    program_id: str
    area: str = ""
    cohort_id: str | None = None
    role: str | None = None
    session_id: str | None = None

    def with_(self, **changes) -> "View":
        return replace(self, **changes)


@lru_cache(maxsize=1)
def tiles() -> dict[str, dict]:
    """The tile map's squares: province code -> {abbr, col, row} (province_tiles.csv)."""
    with open(Path(__file__).with_name("province_tiles.csv"), encoding="utf-8") as f:
        return {r["code"]: {"abbr": r["abbr"], "col": int(r["col"]), "row": int(r["row"])} for r in csv.DictReader(f)}


def bucket(share: float | None) -> int | None:
    """0-4: which colour a percent takes on the map (None: nothing to compare with)."""
    return None if share is None else sum(share >= b for b in BUCKETS)


def programs_overview(storage) -> list[dict]:
    """Every program with its people, those who came, its target and percent."""
    with storage.engine.connect() as conn:
        counted = {r[0]: (int(r[1]), int(r[2])) for r in conn.execute(
            select(area_counts.c.program_id, func.sum(area_counts.c.registered), func.sum(area_counts.c.attended))
            .group_by(area_counts.c.program_id))}
        rows = conn.execute(select(programs.c.id, programs.c.title, programs.c.organizer, programs.c.fiscal_year)
                            .where(programs.c.deleted.is_(None), programs.c.clocks != "{}")).mappings().all()
        goals = _targets(conn, None)
        cohort_count = dict(conn.execute(select(cohorts.c.program_id, func.count()).where(
            cohorts.c.deleted.is_(None), cohorts.c.clocks != "{}").group_by(cohorts.c.program_id)).all())
    out = []
    for row in rows:
        registered, came = counted.get(row["id"], (0, 0))
        goal = target_for([t for t in goals if t["program_id"] == row["id"]], View(row["id"]), "")
        out.append({**row, "registered": registered, "attended": came, "target": goal,
                    "percent": percent(came, goal or registered), "cohorts": cohort_count.get(row["id"], 0)})
    return sorted(out, key=lambda r: thai_sort_key(r["title"] or ""))


def dashboard(storage, view: View) -> dict:
    """One program's page: the headline, the areas one level down, cohorts, roles, sessions and
    (for the whole country) the tile map."""
    with storage.engine.connect() as conn:
        goals = _targets(conn, view.program_id)
        children = _by(conn, view, COLUMN_OF[len(view.area)]) if COLUMN_OF[len(view.area)] else {}
        head = _by(conn, view, None).get(None, (0, 0))
        by_cohort = _by(conn, view.with_(session_id=None), "cohort_id")
        by_role = _by(conn, view, "role")
        numbers = _cohorts(conn, view.program_id)
        session_rows = _sessions(conn, view) if view.cohort_id else []
    areas = [_area_row(code, counts, target_for(goals, view, code or "")) for code, counts in children.items()]
    areas.sort(key=lambda r: (thai_sort_key(r["name"]), r["code"] or ""))
    return {"view": view, "headline": _area_row(view.area, head, target_for(goals, view, view.area)),
            "areas": areas, "level": COLUMN_OF[len(view.area)],
            "cohorts": _cohort_rows(by_cohort, numbers, goals, view), "roles": _role_rows(by_role, goals, view),
            "sessions": session_rows, "cohort_numbers": numbers,
            "map": _map(areas) if view.area == "" else None}


def _area_row(code: str | None, counts: tuple[int, int], goal: int | None) -> dict:
    registered, came = counts
    share = percent(came, goal or registered)
    return {"code": code, "name": area_name(code) or ("ทั้งประเทศ" if code == "" else "ไม่ระบุพื้นที่"),
            "registered": registered, "attended": came, "target": goal, "percent": share,
            "of_target": bool(goal), "bucket": bucket(share)}


def _map(areas: list[dict]) -> list[dict]:
    """The 77 squares, each with its province's counts (empty squares for provinces with nobody)."""
    found = {r["code"]: r for r in areas}
    return [{**tile, "code": code, **(found.get(code) or _area_row(code, (0, 0), None))}
            for code, tile in sorted(tiles().items(), key=lambda kv: (kv[1]["row"], kv[1]["col"]))]


def _filters(table, view: View) -> list:
    where = [table.c.program_id == view.program_id]
    if view.area:
        where.append(table.c[LEVEL_OF[len(view.area)]] == view.area)
    if view.cohort_id:
        where.append(table.c.cohort_id == view.cohort_id)
    if view.role:
        where.append(table.c.role == view.role)
    return where


def _by(conn, view: View, column: str | None) -> dict:
    """(registered, came) per value of `column` (or in all, under None)."""
    if view.session_id:
        return _by_session(conn, view, column)
    key = area_counts.c[column] if column else None
    query = select(*([key] if column else []), func.sum(area_counts.c.registered), func.sum(area_counts.c.attended))
    query = query.where(*_filters(area_counts, view))
    rows = conn.execute(query.group_by(key) if column else query).all()
    if not column:
        return {None: (int(rows[0][0] or 0), int(rows[0][1] or 0))}
    return {(r[0] or None): (int(r[1]), int(r[2])) for r in rows if r[1]}


def _by_session(conn, view: View, column: str | None) -> dict:
    """The people expected at a session (its cohort's) and those who came, per `column`."""
    cohort = conn.execute(select(sessions.c.cohort_id).where(sessions.c.program_id == view.program_id,
                                                             sessions.c.id == view.session_id)).scalar()
    came = case((attendance.c.participant_id.is_not(None), 1), else_=0)
    key = participants.c[column] if column else None
    joined = participants.outerjoin(attendance, and_(attendance.c.program_id == participants.c.program_id,
                                                     attendance.c.participant_id == participants.c.id,
                                                     attendance.c.session_id == view.session_id))
    query = (select(*([key] if column else []), func.count(), func.sum(came)).select_from(joined)
             .where(*_filters(participants, view.with_(cohort_id=cohort)), participants.c.status == "active",
                    participants.c.deleted.is_(None)))
    rows = conn.execute(query.group_by(key) if column else query).all()
    if not column:
        return {None: (int(rows[0][0] or 0), int(rows[0][1] or 0))}
    return {(r[0] or None): (int(r[1]), int(r[2] or 0)) for r in rows}


def _targets(conn, program_id: str | None) -> list[dict]:
    query = select(targets.c.program_id, targets.c.cohort_id, targets.c.role, targets.c.area_code,
                   targets.c.expected).where(targets.c.deleted.is_(None), targets.c.clocks != "{}")
    if program_id:
        query = query.where(targets.c.program_id == program_id)
    return [dict(r) for r in conn.execute(query).mappings()]


def _pick(goals: list[dict], field: str, value) -> list[dict]:
    if value:
        return [t for t in goals if t[field] == value]
    return [t for t in goals if not t[field]] or goals


def target_for(goals: list[dict], view: View, code: str) -> int | None:
    """The target of an area ('' the country) under the view's cohort and role (see the module)."""
    goals = _pick(_pick(goals, "cohort_id", view.cohort_id), "role", view.role)
    exact = [t for t in goals if (t["area_code"] or "") == code]
    if not exact:
        finer = [t for t in goals if (t["area_code"] or "").startswith(code) and len(t["area_code"] or "") > len(code)]
        nearest = min((len(t["area_code"]) for t in finer), default=None)
        exact = [t for t in finer if len(t["area_code"]) == nearest]
    return sum(int(t["expected"]) for t in exact) or None


def _cohorts(conn, program_id: str) -> dict[str, dict]:
    rows = conn.execute(select(cohorts.c.id, cohorts.c.number, cohorts.c.title, cohorts.c.starts_on)
                        .where(cohorts.c.program_id == program_id, cohorts.c.deleted.is_(None),
                               cohorts.c.clocks != "{}")).mappings()
    return {r["id"]: dict(r) for r in rows}


def _cohort_rows(counted: dict, numbers: dict, goals: list[dict], view: View) -> list[dict]:
    mine: dict[str | None, list[dict]] = {}
    for t in goals:  # each cohort's targets once, not every target for every cohort (2,000 venues)
        mine.setdefault(t["cohort_id"], []).append(t)
    rows = [{**numbers.get(cid, {"id": cid, "number": None, "title": None}),
             **_area_row(view.area, counts, target_for(mine.get(cid, []), view.with_(cohort_id=cid), view.area))}
            for cid, counts in counted.items()]
    return sorted(rows, key=lambda r: (r["number"] is None, r["number"] or 0))


def _role_rows(counted: dict, goals: list[dict], view: View) -> list[dict]:
    return [{"role": role, **_area_row(view.area, counted[role], target_for(goals, view.with_(role=role), view.area))}
            for role in ROLES if role in counted]


def _held_sessions() -> tuple:
    """The sessions that count: neither deleted nor removed by a coordinator."""
    return (sessions.c.deleted.is_(None), sessions.c.clocks != "{}",
            func.coalesce(sessions.c.status, "active") != "removed")


def _sessions(conn, view: View) -> list[dict]:
    """The chosen cohort's sessions, each with the people of the view who came."""
    rows = conn.execute(select(sessions.c.id, sessions.c.day, sessions.c.slot, sessions.c.title)
                        .where(sessions.c.program_id == view.program_id, sessions.c.cohort_id == view.cohort_id,
                               *_held_sessions())
                        .order_by(sessions.c.day, sessions.c.opens_at)).mappings().all()
    came = dict(conn.execute(
        select(attendance.c.session_id, func.count()).select_from(attendance.join(
            participants, and_(participants.c.program_id == attendance.c.program_id,
                               participants.c.id == attendance.c.participant_id)))
        .where(*_filters(participants, view), participants.c.status == "active", participants.c.deleted.is_(None),
               attendance.c.session_id.in_([r["id"] for r in rows]))
        .group_by(attendance.c.session_id)).all())
    return [{**r, "attended": int(came.get(r["id"], 0))} for r in rows]


@lru_cache(maxsize=20_000)
def _name(code: str | None) -> str:
    return area_name(code)


def people_table(storage, view: View, chunk: int = 2000):
    """The view's active people, one row each with a mark per session of their own cohort
    (✓ door, ก paper), as a `Table` whose rows are read from the database as they are written."""
    from kiosk.reports.export import MARK_TEXT, ROLE_TH, Table

    with storage.engine.connect() as conn:
        own = _own_sessions(conn, view.program_id)
        numbers = {cid: c["number"] for cid, c in _cohorts(conn, view.program_id).items()}
    width = max((len(v) for v in own.values()), default=0)
    headers = ["ลำดับ", "ชื่อ-สกุล", "บทบาท", "รุ่น", "จังหวัด", "อำเภอ/เขต", "ตำบล/แขวง", "ตำแหน่ง", "หน่วยงาน",
               *[f"ช่วงที่ {k}" for k in range(1, width + 1)], "มา (ช่วง)", "ร้อยละ"]

    def rows():
        for n, (person, marks) in enumerate(_people_marks(storage, view, chunk), 1):
            mine = own.get(person["cohort_id"], [])
            cells = [MARK_TEXT[marks.get(s)] for s in mine] + [""] * (width - len(mine))
            came = sum(s in marks for s in mine)
            yield [n, " ".join(x for x in (f"{person['title'] or ''}{person['first_name'] or ''}",
                                          person["last_name"] or "") if x),
                   ROLE_TH.get(person["role"], person["role"]), numbers.get(person["cohort_id"]),
                   _name(person["province_code"]), _name(person["district_code"]), _name(person["subdistrict_code"]),
                   person["position"] or "", person["organization"] or "", *cells, came,
                   percent(came, len(mine)) if mine else ""]
    return Table("รายบุคคล", headers, rows())


def _own_sessions(conn, program_id: str) -> dict[str, list[str]]:
    """Each cohort's session ids in order."""
    out: dict[str, list[str]] = {}
    for cohort_id, session_id in conn.execute(
            select(sessions.c.cohort_id, sessions.c.id)
            .where(sessions.c.program_id == program_id, *_held_sessions())
            .order_by(sessions.c.cohort_id, sessions.c.day, sessions.c.opens_at, sessions.c.id)):
        out.setdefault(cohort_id, []).append(session_id)
    return out


def _people_marks(storage, view: View, chunk: int):
    """(person, {session_id: "door"|"paper"}) in sheet order, streamed from one query."""
    from sync.central.storage.tables import scans

    p = participants
    via = func.coalesce(scans.c.via, "door")
    joined = (p.outerjoin(cohorts, and_(cohorts.c.program_id == p.c.program_id, cohorts.c.id == p.c.cohort_id))
              .outerjoin(attendance, and_(attendance.c.program_id == p.c.program_id,
                                          attendance.c.participant_id == p.c.id))
              .outerjoin(scans, and_(scans.c.program_id == attendance.c.program_id,
                                     scans.c.id == attendance.c.first_scan_id)))
    query = (select(p.c.id, p.c.cohort_id, p.c.title, p.c.first_name, p.c.last_name, p.c.role, p.c.province_code,
                    p.c.district_code, p.c.subdistrict_code, p.c.position, p.c.organization,
                    attendance.c.session_id, via.label("via"))
             .select_from(joined).where(*_filters(p, view), p.c.status == "active", p.c.deleted.is_(None))
             .order_by(cohorts.c.number, p.c.province_code, p.c.district_code, p.c.subdistrict_code,
                       p.c.first_name, p.c.last_name, p.c.id)
             .execution_options(yield_per=chunk))
    person, marks = None, {}
    with storage.engine.connect() as conn:
        for row in conn.execute(query).mappings():
            if person is None or row["id"] != person["id"]:
                if person is not None:
                    yield person, marks
                person, marks = dict(row), {}
            if row["session_id"]:
                marks[row["session_id"]] = row["via"]
    if person is not None:
        yield person, marks


def shown_tables(page: dict) -> list:
    """What a dashboard page shows, as tables for CSV or XLSX."""
    from kiosk.reports.export import ROLE_TH, Table

    def counts(r):
        return [r["registered"], r["attended"], r["target"] or "", "" if r["percent"] is None else r["percent"]]
    heads = ["ลงทะเบียน", "มาอย่างน้อยหนึ่งช่วง", "เป้าหมาย", "ร้อยละ"]
    head = page["headline"]
    tables = [Table("สรุป", ["พื้นที่", *heads], [[head["name"], *counts(head)]])]
    if page["areas"]:
        tables.append(Table("ตามพื้นที่", ["รหัส", "พื้นที่", *heads],
                            [[r["code"] or "", r["name"], *counts(r)] for r in page["areas"]]))
    tables.append(Table("ตามรุ่น", ["รุ่น", *heads], [[r["number"], *counts(r)] for r in page["cohorts"]]))
    tables.append(Table("ตามบทบาท", ["บทบาท", *heads], [[ROLE_TH.get(r["role"], r["role"]), *counts(r)]
                                                       for r in page["roles"]]))
    if page["sessions"]:
        tables.append(Table("ตามช่วง", ["วัน", "ช่วง", "มา"], [[r["day"], r["slot"], r["attended"]]
                                                          for r in page["sessions"]]))
    return tables


def cohort_id(storage, program_id: str, number: int) -> str | None:
    with storage.engine.connect() as conn:
        return conn.execute(select(cohorts.c.id).where(cohorts.c.program_id == program_id,
                                                       cohorts.c.number == number,
                                                       cohorts.c.deleted.is_(None))).scalar()


def session_of(storage, program_id: str, session_id: str) -> dict | None:
    """A program's session with its cohort's number, or None."""
    with storage.engine.connect() as conn:
        row = conn.execute(select(sessions.c.id, sessions.c.cohort_id, sessions.c.day, sessions.c.slot,
                                  sessions.c.title, sessions.c.opens_at, sessions.c.closes_at, cohorts.c.number)
                           .select_from(sessions.outerjoin(cohorts, and_(cohorts.c.program_id == sessions.c.program_id,
                                                                        cohorts.c.id == sessions.c.cohort_id)))
                           .where(sessions.c.program_id == program_id, sessions.c.id == session_id,
                                  *_held_sessions())).mappings().first()
    return dict(row) if row else None
