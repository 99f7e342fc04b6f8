"""Every fixture of the suite: a fresh data folder and app per test, events built through the
services, logged-in clients, real servers (kiosk, central, PostgreSQL) and a real Chromium.

Plain helpers (wait_until, bangkok, Kiosk, assert_invariant, …) live in tests/support.py.
"""

import os
import shutil

import pytest

from kiosk import create_app
from kiosk.store.db import open_data_dir
from kiosk.trust import accounts as auth

from support import PEOPLE, CentralServer, KioskServer, PostgresCluster, build_event


@pytest.fixture(autouse=True, scope="session")
def computer_secrets(tmp_path_factory):
    """This computer's secrets folder (the national-ID key) for the whole run: never the tester's own."""
    os.environ["KIOSK_SECRETS"] = str(tmp_path_factory.mktemp("secrets"))
    yield os.environ["KIOSK_SECRETS"]


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
def make_event(db):
    """The one event builder (tests/support.py `build_event`) on this test's database:
    `make_event()`, or `make_event(open_now=True, extra_people=400)` for the door."""
    return lambda **options: build_event(db, **options)


@pytest.fixture
def event(make_event):
    """A program with cohort 1 meeting today and tomorrow, cohort 2 in 2030, three people with badges
    who share one phone number (0812345678)."""
    return make_event(people=[(*person[:5], "0812345678") for person in PEOPLE[:3]])


@pytest.fixture
def open_event(make_event):
    """A program whose first session, today, is open around now (venue time); four people with badges."""
    return make_event(open_now=True)


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


@pytest.fixture
def accounts(db):
    """The door's two accounts on this test's kiosk: chief (coordinator) and door (staff)."""
    auth.add_user(db, "chief", "coordinator", "password123")
    auth.add_user(db, "door", "staff", "password123")
    return {"coordinator": ("chief", "password123"), "staff": ("door", "password123")}


# --- real processes ------------------------------------------------------------------------------

@pytest.fixture
def kiosk_server(data_dir):
    """Starts `kiosk serve` on this test's data folder (or another): `kiosk_server()`; stopped after."""
    started = []

    def start(folder=None, **options):
        server = KioskServer(folder or data_dir, **options).start()
        started.append(server)
        return server
    yield start
    for server in started:
        server.stop()


@pytest.fixture
def central_server(tmp_path):
    """Starts a central server: `central_server(env={...})`; every one is SIGKILLed after the test,
    even when it fails half-way."""
    started = []

    def start(data_dir=None, **options):
        server = CentralServer(data_dir or tmp_path / "central", **options).start()
        started.append(server)
        return server
    yield start
    for server in started:
        server.kill()


@pytest.fixture(scope="session")
def postgres_cluster():
    """A throwaway PostgreSQL 15 cluster on 127.0.0.1 for the session."""
    if not PostgresCluster.installed():
        message = "PostgreSQL 15 is not installed (/usr/lib/postgresql/15/bin/initdb missing)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " - CI must run the PostgreSQL tests")
        pytest.skip(message)
    cluster = PostgresCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def central_db_url(request, tmp_path):
    """The central server's database URL: SQLite, then a real PostgreSQL 15."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'central.db'}"
    return request.getfixturevalue("postgres_cluster").new_database()


@pytest.fixture
def central(central_server, central_db_url):
    """A running central server (subprocess) on SQLite or PostgreSQL."""
    return central_server(url=central_db_url)


# --- Chromium ------------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]


@pytest.fixture
def chromium():
    """Launches headless Debian Chromium through Playwright: `chromium(extra_args=[...])`; skips the
    test where Debian's chromium is not installed; everything is closed after the test."""
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        def launch(extra_args=(), **kwargs):
            return playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args],
                                              **kwargs)
        yield launch
