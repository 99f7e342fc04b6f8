"""Staff accounts on this kiosk: coordinators and check-in staff, passwords, API tokens.

Accounts belong to one laptop and never sync: a venue's logins are its own.
"""

import hashlib
import hmac
import re
import secrets
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from kiosk.errors import KioskError
from kiosk.clock import iso, new_id, now_utc
from kiosk.db import transaction
from kiosk.paths import write_atomically

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
    return list(db.query("select id, username, display_name, role, created_at, token_hash is not null as has_token from users order by username"))


def authenticate(db, username: str, password: str) -> dict | None:
    """The user if the password is right, else None (same time either way)."""
    user = get_user(db, username or "")
    digest = user["password_hash"] if user else generate_password_hash("timing-equaliser")
    ok = check_password_hash(digest, password or "")
    return user if user and ok else None


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
    if not token:
        return None
    rows = list(db.query("select * from users where token_hash = ?", [_token_hash(token)]))
    return rows[0] if rows else None


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
