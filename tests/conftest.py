"""Shared fixtures: a fresh data folder and app per test, a seeded event, logged-in clients."""

from datetime import date

import pytest

from kiosk import auth, create_app, events
from kiosk.clock import local_day
from kiosk.db import open_data_dir
from kiosk.issuance import issue_badge
from kiosk.people import add_participant, participant_fields


@pytest.fixture
def data_dir(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def db(data_dir):
    database = open_data_dir(data_dir)
    yield database
    database.close()


@pytest.fixture
def app(data_dir, db):
    return create_app({"DATA_DIR": str(data_dir), "TESTING": True, "WTF_CSRF_ENABLED": False})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def event(db):
    """A program with cohort 1 meeting today and tomorrow, three people with badges."""
    program_id = events.create_program(db, "อบรมผู้นำชุมชน", "สำนักพัฒนาสังคม", 2570)
    program = events.get_program(db, program_id)
    cohort_id = events.add_cohort(db, program_id, 1, local_day(), 2)
    cohort2_id = events.add_cohort(db, program_id, 2, date(2030, 1, 7), 1)
    people = []
    for title, first, last, district, role in (
        ("นางสาว", "สมหญิง", "ใจดี", "ดินแดง", "participant"),
        ("นาย", "สมชาย", "ศรีสุข", "ดุสิต", "participant"),
        ("นาง", "ลำดวน", "ผู้ใหญ่ยิ่ง", "สาทร", "speaker"),
    ):
        fields = participant_fields({"title": title, "first_name": first, "last_name": last, "role": role,
                                     "province": "กรุงเทพมหานคร", "district": district,
                                     "phone": "0812345678"}, program["signing_key"])
        pid = add_participant(db, program_id, cohort_id, fields, "roster")
        code = issue_badge(db, {"id": pid, "program_id": program_id})
        people.append({"id": pid, "code": code, **fields})
    return {"program": program, "program_id": program_id, "cohort_id": cohort_id, "cohort2_id": cohort2_id,
            "sessions": events.sessions(db, cohort_id), "people": people}


def _login(client, db, username, role):
    if not auth.has_coordinator(db):
        auth.add_user(db, "chief", "coordinator", "password123")
    auth.add_user(db, username, role, "password123")
    response = client.post("/login", data={"username": username, "password": "password123"})
    assert response.status_code == 302
    return client


@pytest.fixture
def coordinator(client, db):
    return _login(client, db, "coord", "coordinator")


@pytest.fixture
def staff(client, db):
    return _login(client, db, "door", "staff")
