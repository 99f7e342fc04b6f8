"""The plain rows every report is computed from, whichever server holds them.

A kiosk (sqlite-utils, `kiosk.reports.sources`) and the central server (SQLAlchemy,
`sync.central.reports`) each fill a `Dataset` with dicts of the same keys; every report in
`kiosk.reports.attendance` and `kiosk.reports.certificates` reads only a Dataset, so the two
servers cannot disagree.

Row keys:
  program      id, title, organizer, fiscal_year, certificate_rule (JSON text), allowance_rate
  cohorts      id, number, title, site_id, starts_on, ends_on
  sessions     id, cohort_id, day, slot, opens_at, closes_at, title, status ("removed": left out)
  participants id, cohort_id, title, first_name, last_name, role, position, organization,
               province_code, district_code, subdistrict_code, status
  attendance   participant_id, session_id, first_at, via ("door", "paper" or "manual": by hand)
  targets      id, cohort_id, role, area_code, expected
  sites        id, name
  badges       participant_id -> current badge code (kiosk only: row QR codes need them)
  progress     id, cohort_id, period, problems, obstacles, written_by, written_at
  corrections  id, participant_id, session_id, result ("checked_in" or "undone"), operator, at, note
               (attendance corrected by hand)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import geothai

from kiosk.thai import full_name, thai_date, thai_sort_key

SLOT_ORDER = {"morning": 0, "day": 1, "afternoon": 2}
AREA_LEVELS = ("province", "district", "subdistrict")
_LEVEL_OF_CODE = {2: "province", 4: "district", 6: "subdistrict"}


@dataclass
class Dataset:
    """One program's rows (optionally cut to a cohort or a province) for the reports."""

    program: dict
    cohorts: list[dict]
    sessions: list[dict]
    participants: list[dict]
    attendance: list[dict]
    targets: list[dict] = field(default_factory=list)
    sites: list[dict] = field(default_factory=list)
    badges: dict[str, str] = field(default_factory=dict)
    progress: list[dict] = field(default_factory=list)
    corrections: list[dict] = field(default_factory=list)

    def __post_init__(self):
        # a session a coordinator removed counts nowhere: its check-ins stay on record, apart
        self.sessions = [s for s in self.sessions if (s.get("status") or "active") != "removed"]
        held = {s["id"] for s in self.sessions}
        self.attendance = [a for a in self.attendance if a["session_id"] in held]

    @cached_property
    def active(self) -> list[dict]:
        """Active people (withdrawn ones are neither expected nor counted), in sheet order."""
        people = [p for p in self.participants if (p.get("status") or "active") == "active"]
        return sorted(people, key=person_sort_key)

    @cached_property
    def ordered_sessions(self) -> list[dict]:
        number = {c["id"]: c.get("number") or 0 for c in self.cohorts}
        return sorted(self.sessions, key=lambda s: (number.get(s["cohort_id"], 0), s["day"],
                                                     SLOT_ORDER.get(s.get("slot"), 1), s.get("opens_at") or "", s["id"]))

    @cached_property
    def marks(self) -> dict[tuple[str, str], dict]:
        """(participant_id, session_id) -> its attendance row."""
        return {(a["participant_id"], a["session_id"]): a for a in self.attendance}

    @cached_property
    def sessions_of_cohort(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for s in self.ordered_sessions:
            out.setdefault(s["cohort_id"], []).append(s)
        return out

    def cohort(self, cohort_id: str | None) -> dict:
        return next((c for c in self.cohorts if c["id"] == cohort_id), {})

    def sessions_for(self, person: dict) -> list[dict]:
        return self.sessions_of_cohort.get(person.get("cohort_id"), [])

    def attended(self, person: dict) -> list[dict]:
        """The sessions of the person's cohort they attended, in order."""
        return [s for s in self.sessions_for(person) if (person["id"], s["id"]) in self.marks]

    def restricted(self, cohort_id: str | None = None, province_code: str | None = None) -> "Dataset":
        """The same program cut to one cohort and/or the people of one province."""
        people = [p for p in self.participants if (not cohort_id or p.get("cohort_id") == cohort_id)
                  and (not province_code or p.get("province_code") == province_code)]
        ids = {p["id"] for p in people}
        sessions = [s for s in self.sessions if not cohort_id or s["cohort_id"] == cohort_id]
        # a program-wide target has no place in one cohort's tables: its numbers are the program's
        targets = [t for t in self.targets if (not cohort_id or t.get("cohort_id") == cohort_id)
                   and (not province_code or (t.get("area_code") or "").startswith(province_code))]
        return Dataset(self.program, [c for c in self.cohorts if not cohort_id or c["id"] == cohort_id],
                       sessions, people, [a for a in self.attendance if a["participant_id"] in ids],
                       targets, self.sites, self.badges,
                       [e for e in self.progress if not cohort_id or e.get("cohort_id") == cohort_id],
                       [c for c in self.corrections if c["participant_id"] in ids])


def area_code(person: dict, level: str) -> str | None:
    """A person's area code at a level (province, district or subdistrict)."""
    return person.get(f"{level}_code")


def area_name(code: str | None) -> str:
    """The Thai name of an area code ('1026' → 'ดินแดง'); '' when unknown or empty."""
    if not code:
        return ""
    level = _LEVEL_OF_CODE.get(len(code))
    found = getattr(geothai, level)(code) if level else None
    return found.name_th if found else ""


def level_of(code: str | None) -> str | None:
    """'province', 'district' or 'subdistrict' for an area code by its length."""
    return _LEVEL_OF_CODE.get(len(code or ""))


def group_level(people: list[dict]) -> str:
    """The area level a sheet groups by: districts when everyone shares a province, else provinces."""
    provinces = {p.get("province_code") for p in people if p.get("role") == "participant"}
    return "district" if len(provinces) <= 1 else "province"


def person_sort_key(p: dict) -> tuple:
    """Participants first, by province, district, subdistrict name in Thai order, then name."""
    role_rank = {"participant": 0, "speaker": 1, "staff": 2, "observer": 3}.get(p.get("role"), 4)
    areas = tuple(thai_sort_key(area_name(p.get(f"{level}_code"))) for level in AREA_LEVELS)
    return (role_rank, *areas, thai_sort_key(p.get("first_name")), thai_sort_key(p.get("last_name")), p["id"])


def display_name(p: dict) -> str:
    """Title and name as Thai writes them."""
    return full_name(p)


def percent(part: int, whole: int) -> float | None:
    """`part` of `whole` in percent, one decimal; None when there is nothing to compare with."""
    return round(100.0 * part / whole, 1) if whole else None


def session_label(s: dict) -> str:
    """A session as a column head: '21 พ.ย. 2569', with เช้า / บ่าย for half days."""
    slot = {"morning": " เช้า", "afternoon": " บ่าย"}.get(s.get("slot"), "")
    return thai_date(s["day"], short=True) + slot
