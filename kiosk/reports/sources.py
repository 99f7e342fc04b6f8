"""A kiosk's rows for the reports: one program (optionally one cohort) read from SQLite."""

from __future__ import annotations

from kiosk.reports.aggregates import Reader
from kiosk.reports.rows import Dataset

PERSON_COLUMNS = ("id", "cohort_id", "title", "first_name", "last_name", "role", "position", "organization",
                  "province_code", "district_code", "subdistrict_code", "status", "erased_at")


def _rows(db, sql: str, args) -> list[dict]:
    return list(db.query(sql, args))


def kiosk_dataset(db, program_id: str, cohort_id: str | None = None) -> Dataset:
    """The program's rows on this kiosk; with `cohort_id`, that cohort only."""
    where, args = ("program_id = ?", [program_id]) if not cohort_id else ("cohort_id = ?", [cohort_id])
    program = _rows(db, "select id, title, organizer, fiscal_year, certificate_rule, allowance_rate"
                        " from programs where id = ?", [program_id])[0]
    cohorts = _rows(db, "select id, number, title, site_id, starts_on, ends_on from cohorts where "
                        + ("program_id = ?" if not cohort_id else "id = ?"), [cohort_id or program_id])
    sessions = _rows(db, f"select id, cohort_id, day, slot, opens_at, closes_at, title, status from sessions where {where}",
                     args)
    people = _rows(db, f"select {', '.join(PERSON_COLUMNS)} from participants where {where}", args)
    attendance = _rows(db, "select a.participant_id, a.session_id, a.first_at, coalesce(s.via, 'door') as via"
                           " from attendance a join sessions x on x.id = a.session_id"
                           " left join scans s on s.id = a.first_scan_id where x."
                           + where, args)
    targets = _rows(db, "select id, cohort_id, role, area_code, expected from targets where program_id = ?"
                        + (" and cohort_id = ?" if cohort_id else ""),
                    [program_id, *([cohort_id] if cohort_id else [])])
    sites = _rows(db, "select id, name from sites where program_id = ?", [program_id])
    badges = dict(db.execute(
        "select b.participant_id, b.code from badges b join participants p on p.id = b.participant_id"
        f" where b.revoked_at is null and p.{where}", args).fetchall())
    progress = _rows(db, "select id, cohort_id, period, problems, obstacles, written_by, written_at"
                         " from progress_entries where program_id = ?"
                         + (" and cohort_id = ?" if cohort_id else ""), [program_id, *([cohort_id] if cohort_id else [])])
    corrections = _rows(db, "select x.id, x.participant_id, x.session_id, x.result, x.operator, x.at, x.note"
                            " from scans x join sessions s on s.id = x.session_id where x.via = 'manual' and s."
                            + where, args)
    return Dataset(program, cohorts, sessions, people, attendance, targets, sites, badges, progress, corrections)


def kiosk_reader(db) -> Reader:
    """The report SQL (kiosk.reports.aggregates) run on this kiosk's database."""
    return Reader(lambda sql, params: list(db.query(sql, params)))
