"""The central server's rows for the reports: the same `Dataset` a kiosk builds, from the typed
read tables, `attendance` and `scans`, and the same report SQL (`kiosk.reports.aggregates`) on
them, so both servers compute with `kiosk.reports` alone."""

from __future__ import annotations

from sqlalchemy import text

from kiosk.reports.aggregates import Reader
from kiosk.reports.rows import Dataset
from kiosk.people.privacy import earned
from kiosk.reports.verify import person_dataset, verify_certificate

ENTITIES = ("programs", "cohorts", "sessions", "participants", "targets", "sites", "progress_entries")


def central_reader(storage) -> Reader:
    """The report SQL (kiosk.reports.aggregates) run on central's typed tables, which keep deleted
    rows marked, and placeholders (no stamps yet) of people whose changes have not arrived."""
    def run(sql: str, params: dict) -> list[dict]:
        with storage.engine.connect() as conn:
            return [dict(r) for r in conn.execute(text(sql), params).mappings()]
    return Reader(run, lambda alias: f" and {alias}.deleted is null and {alias}.clocks != '{{}}'")


def _rows(storage, program_id: str, entity: str) -> list[dict]:
    return [{"id": entity_id, **fields} for entity_id, fields in storage.entity_rows(program_id, entity).items()]


def central_dataset(storage, program_id: str, cohort_number: int | None = None,
                    province: str | None = None) -> Dataset | None:
    """One program's rows on central, optionally cut to a cohort number and a province code;
    None when the program (or the cohort) is unknown here."""
    rows = {entity: _rows(storage, program_id, entity) for entity in ENTITIES}
    program = next((p for p in rows["programs"] if p["id"] == program_id), None)
    if program is None:
        return None
    program.pop("signing_key", None)  # reports never carry keys
    data = Dataset(program, rows["cohorts"], rows["sessions"], rows["participants"],
                   storage.attendance_rows(program_id), rows["targets"], rows["sites"], {},
                   rows["progress_entries"], storage.correction_rows(program_id))
    cohort = None
    if cohort_number is not None:
        cohort = next((c for c in data.cohorts if c.get("number") == cohort_number), None)
        if cohort is None:
            return None
    if cohort or province:
        return data.restricted(cohort["id"] if cohort else None, province)
    return data


def program_key(storage, program_id: str) -> bytes | None:
    key = storage.program_key(program_id)
    return bytes.fromhex(key) if key else None


def person_record(storage, participant_id: str) -> dict:
    """Everything central holds about a person (`Storage.person_record`), with the certificate and
    allowance they earn here, as on a kiosk (kiosk.people.privacy.earned)."""
    record = storage.person_record(participant_id)
    program_id = record["person"]["program_id"]
    data = person_dataset(central_reader(storage), program_id, participant_id)
    if data is not None:
        record.update(earned(data, record["person"], program_key(storage, program_id)))
    return record


def verify(storage, code: str) -> dict | None:
    """A certificate code checked on central: name, program, dates and standing, or None."""
    keys = {pid: k for pid in storage.programs() if (k := program_key(storage, pid))}
    reader = central_reader(storage)
    return verify_certificate(code, keys, lambda program_id, participant_id: person_dataset(
        reader, program_id, participant_id))
