"""Staff accounts on this kiosk: coordinators and check-in staff, passwords, API tokens.

Accounts belong to one laptop and never sync: a venue's logins are its own.
"""

import hashlib
import hmac
import re
import secrets
import threading
import time
from datetime import timedelta
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from kiosk.clock import iso, new_id, now_utc
from kiosk.errors import KioskError
from kiosk.paths import write_atomically
from kiosk.store.db import transaction

ROLES = ("coordinator", "staff")
SETUP_FILE = "setup_code"
USERNAME = re.compile(r"^[A-Za-z0-9_.\-]{2,40}$")


class AuthError(KioskError):
    """An account request that cannot be done."""


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(db, username: str, role: str, password: str, display_name: str = "") -> str:
    """A new account; the password is stored as a salted scrypt hash."""
    check_account(username, password)
    if role not in ROLES:
        raise AuthError("bad_role", "role is coordinator or staff")
    if get_user(db, username):
        raise AuthError("duplicate_user", f"user {username} already exists")
    user_id = new_id()
    with transaction(db):
        db["users"].insert({
            "id": user_id, "username": username, "display_name": display_name or username, "role": role,
            "password_hash": generate_password_hash(password), "token_hash": None, "created_at": iso(now_utc()),
        })
    return user_id


def check_account(username: str, password: str) -> None:
    """The account rules shared by kiosks and the central server: a user name and a long password."""
    if not USERNAME.match(username or ""):
        raise AuthError("bad_username", "user name: 2–40 letters, digits, . _ -")
    check_password(password)


def check_password(password: str) -> None:
    """A password needs at least 8 characters."""
    if len(password or "") < 8:
        raise AuthError("weak_password", "password needs at least 8 characters")


def get_user(db, username: str) -> dict | None:
    rows = list(db.query("select * from users where username = ?", [username]))
    return rows[0] if rows else None


def user_by_id(db, user_id: str) -> dict | None:
    rows = list(db.query("select * from users where id = ?", [user_id]))
    return rows[0] if rows else None


def users(db) -> list[dict]:
    return list(db.query("select id, username, display_name, role, created_at, token_hash is not null as has_token, disabled_at from users order by username"))


# Checked against when the user name is unknown, so that refusing a stranger takes as long as
# refusing a wrong password (made once: generating a hash costs as much as checking one).
_DUMMY_HASH = generate_password_hash("timing-equaliser")
SESSION_HOURS = 12


def authenticate(db, username: str, password: str) -> dict | None:
    """The user if the password is right and the account is not disabled, else None (same work either way)."""
    user = get_user(db, username or "")
    ok = check_password_hash(user["password_hash"] if user else _DUMMY_HASH, password or "")
    return user if user and ok and not user.get("disabled_at") else None


def start_session(db, user_id: str) -> str:
    """A server-side login session; the cookie carries only its random id."""
    session_id = secrets.token_urlsafe(24)
    with transaction(db):
        db.execute("insert into login_sessions (id, user_id, created_at) values (?, ?, ?)",
                   [session_id, user_id, iso(now_utc())])
    return session_id


def session_user(db, session_id: str | None) -> dict | None:
    """The user of a live login session: not ended, younger than SESSION_HOURS, account enabled."""
    if not session_id:
        return None
    oldest = iso(now_utc() - timedelta(hours=SESSION_HOURS))
    rows = list(db.query(
        "select u.* from login_sessions s join users u on u.id = s.user_id where s.id = ? and s.ended_at is null"
        " and s.created_at > ? and u.disabled_at is null", [session_id, oldest]))
    return rows[0] if rows else None


def end_session(db, session_id: str | None) -> None:
    """Logging out: the session ends on the server, so a copied cookie stops working too."""
    if session_id:
        with transaction(db):
            db.execute("update login_sessions set ended_at = ? where id = ? and ended_at is null",
                       [iso(now_utc()), session_id])


def _end_all_sessions(db, user_id: str) -> None:
    db.execute("update login_sessions set ended_at = ? where user_id = ? and ended_at is null",
               [iso(now_utc()), user_id])


def change_password(db, username: str, password: str) -> None:
    """A new password; every login session of the account ends, and its API token stops working."""
    check_password(password)
    user = get_user(db, username)
    if not user:
        raise AuthError("unknown_user", f"no user {username}")
    with transaction(db):
        db.execute("update users set password_hash = ?, token_hash = null where id = ?",
                   [generate_password_hash(password), user["id"]])
        _end_all_sessions(db, user["id"])


def set_disabled(db, username: str, disabled: bool, by: str | None = None) -> None:
    """Disables an account (its sessions end, its token stops) or enables it again. Never one's own
    (`by`), nor the last enabled coordinator: nobody could set accounts up any more."""
    user = get_user(db, username)
    if not user:
        raise AuthError("unknown_user", f"no user {username}")
    if disabled and by == username:
        raise AuthError("own_account", "one's own account is disabled by another coordinator")
    others = db.execute("select count(*) from users where role = 'coordinator' and disabled_at is null and id != ?",
                        [user["id"]]).fetchone()[0]
    if disabled and user["role"] == "coordinator" and not others:
        raise AuthError("last_coordinator", "the last enabled coordinator")
    with transaction(db):
        db.execute("update users set disabled_at = ?, token_hash = case when ? then null else token_hash end"
                   " where id = ?", [iso(now_utc()) if disabled else None, disabled, user["id"]])
        if disabled:
            _end_all_sessions(db, user["id"])


class LoginThrottle:
    """Back-off after failed logins, per account and per address: a password cannot be guessed fast.

    After FREE failures within WINDOW seconds, each further attempt must wait 2^(n - FREE) seconds
    (at most MAX_WAIT) after the last failure. Kept in memory: a restart forgets, which is fine for
    a venue laptop and a small central server.
    """

    FREE, WINDOW, MAX_WAIT = 5, 900, 300

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def wait_seconds(self, *keys: str) -> float:
        """How long the caller must still wait before trying these keys again (0: go ahead)."""
        now = self._clock()
        with self._lock:
            return max((self._wait(key, now) for key in keys), default=0.0)

    def _wait(self, key: str, now: float) -> float:
        recent = [t for t in self._failures.get(key, []) if now - t < self.WINDOW]
        self._failures[key] = recent
        return backoff(recent, now)

    def failed(self, *keys: str) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                self._failures.setdefault(key, []).append(now)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


def backoff(recent: list[float], now: float) -> float:
    """Seconds still to wait after `recent` failures (times within the WINDOW, oldest first)."""
    if len(recent) < LoginThrottle.FREE:
        return 0.0
    delay = min(LoginThrottle.MAX_WAIT, 2 ** (len(recent) - LoginThrottle.FREE))
    return max(0.0, recent[-1] + delay - now)


def issue_token(db, username: str) -> str:
    """A new API token for a user (the old one stops working); only its hash is kept."""
    user = get_user(db, username)
    if not user:
        raise AuthError("unknown_user", f"no user {username}")
    token = "kt_" + secrets.token_urlsafe(32)
    with transaction(db):
        db.execute("update users set token_hash = ? where id = ?", [_token_hash(token), user["id"]])
    return token


def user_for_token(db, token: str) -> dict | None:
    """The enabled user holding API `token`, or None."""
    if not token:
        return None
    cursor = db.execute("select * from users where token_hash = ? and disabled_at is null", [_token_hash(token)])
    row = cursor.fetchone()
    return dict(zip([c[0] for c in cursor.description], row)) if row else None


def has_coordinator(db) -> bool:
    return bool(db.execute("select 1 from users where role = 'coordinator' limit 1").fetchone())


def setup_code(db, data_dir: str | Path) -> str | None:
    """The one-time code that creates the first coordinator; None once one exists."""
    path = Path(data_dir) / SETUP_FILE
    if has_coordinator(db):
        path.unlink(missing_ok=True)
        return None
    if not path.exists():
        write_atomically(path, "-".join(secrets.token_hex(2).upper() for _ in range(3)))
    return path.read_text().strip()


def create_first_coordinator(db, data_dir, code: str, username: str, password: str) -> str:
    """Uses the set-up code once to create the first coordinator."""
    expected = setup_code(db, data_dir)
    if expected is None:
        raise AuthError("setup_done", "a coordinator already exists")
    if not hmac.compare_digest(expected, (code or "").strip().upper()):
        raise AuthError("bad_setup_code", "wrong set-up code")
    user_id = add_user(db, username, "coordinator", password)
    (Path(data_dir) / SETUP_FILE).unlink(missing_ok=True)
    return user_id
