"""Coordinators' accounts on the central server: the same rules as a kiosk's, a one-time set-up code."""

import hashlib
import hmac
import secrets
import time
import uuid
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from kiosk.clock import iso, now_utc
from kiosk.trust.accounts import SESSION_HOURS, AuthError, LoginThrottle, backoff, check_account, check_password
from sync import auth
from sync.central.storage.tables import login_failures, login_sessions, meta, users

_DUMMY_HASH = generate_password_hash("timing-equaliser")


class Accounts:
    """Coordinators' accounts (a part of Storage)."""

    def add_user(self, username: str, password: str, conn=None) -> str:
        """A coordinator account on the central server; the password kept as a salted scrypt hash.

        Raises kiosk.trust.accounts.AuthError (bad_username, weak_password, duplicate_user), as on a kiosk.
        """
        check_account(username, password)
        user_id = str(uuid.uuid4())
        row = dict(id=user_id, username=username, created_at=iso(now_utc()),
                   password_hash=generate_password_hash(password))
        try:
            if conn is not None:
                conn.execute(users.insert().values(**row))
            else:
                with self.write() as own:
                    own.execute(users.insert().values(**row))
        except IntegrityError:
            raise AuthError("duplicate_user", f"user {username} already exists") from None
        return user_id

    def authenticate(self, username: str, password: str) -> dict | None:
        """The user if the password is right, else None (the same work either way)."""
        with self.engine.connect() as conn:
            user = conn.execute(select(users).where(users.c.username == (username or ""))).mappings().first()
        ok = check_password_hash(user["password_hash"] if user else _DUMMY_HASH, password or "")
        return dict(user) if user and ok and not user["disabled_at"] else None

    def user(self, user_id: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users.c.id, users.c.username).where(
                users.c.id == user_id, users.c.disabled_at.is_(None))).mappings().first()
        return dict(row) if row else None

    def start_session(self, user_id: str) -> str:
        """A server-side login session; the cookie carries only its random id."""
        session_id = secrets.token_urlsafe(24)
        with self.write() as conn:
            conn.execute(login_sessions.insert().values(id=session_id, user_id=user_id, created_at=iso(now_utc())))
        return session_id

    def session_user(self, session_id: str | None) -> dict | None:
        """The coordinator of a live session: not ended, younger than SESSION_HOURS, account enabled."""
        if not session_id:
            return None
        oldest = iso(now_utc() - timedelta(hours=SESSION_HOURS))
        with self.engine.connect() as conn:
            row = conn.execute(select(users.c.id, users.c.username).join(
                login_sessions, login_sessions.c.user_id == users.c.id).where(
                login_sessions.c.id == session_id, login_sessions.c.ended_at.is_(None),
                login_sessions.c.created_at > oldest, users.c.disabled_at.is_(None))).mappings().first()
        return dict(row) if row else None

    def end_session(self, session_id: str | None) -> None:
        """Logging out ends the session on the server: a copied cookie stops working too."""
        if session_id:
            with self.write() as conn:
                conn.execute(update(login_sessions).where(login_sessions.c.id == session_id,
                                                          login_sessions.c.ended_at.is_(None))
                             .values(ended_at=iso(now_utc())))

    def change_password(self, username: str, password: str) -> None:
        """A new password; every session of the account ends."""
        check_password(password)
        self._set_user(username, password_hash=generate_password_hash(password))

    def set_disabled(self, username: str, disabled: bool) -> None:
        """Shuts an account out (its sessions end) or lets it back in."""
        self._set_user(username, disabled_at=iso(now_utc()) if disabled else None)

    def _set_user(self, username: str, **values) -> None:
        with self.write() as conn:
            found = conn.execute(update(users).where(users.c.username == username).values(**values)
                                 .returning(users.c.id)).first()
            if found is None:
                raise AuthError("unknown_user", f"no user {username}")
            conn.execute(update(login_sessions).where(login_sessions.c.user_id == found[0],
                                                      login_sessions.c.ended_at.is_(None))
                         .values(ended_at=iso(now_utc())))

    def has_users(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(users.c.id).limit(1)).first() is not None

    def setup_code(self) -> str | None:
        """A fresh one-time code that creates the first coordinator (the previous one stops
        working); None once an account exists. Only its hash is stored."""
        if self.has_users():
            return None
        code = auth.new_code()
        self.set_meta("setup_code_hash", auth.hash_code(code))
        return code

    def create_first_user(self, code: str, username: str, password: str) -> str:
        """Uses the set-up code, once, to create the first coordinator."""
        if self.has_users():
            raise AuthError("setup_done", "a coordinator already exists")
        expected = self.get_meta("setup_code_hash") or ""
        if not expected or not hmac.compare_digest(expected, auth.hash_code(code or "")):
            raise AuthError("bad_setup_code", "wrong set-up code")
        check_account(username, password)  # a typo in the form does not spend the code
        with self.write() as conn:  # spent in the transaction that creates the account
            spent = conn.execute(delete(meta).where(meta.c.key == "setup_code_hash", meta.c.value == expected)
                                 .returning(meta.c.key)).first()
            if spent is None:
                raise AuthError("bad_setup_code", "wrong set-up code")
            return self.add_user(username, password, conn)



class SharedThrottle:
    """The login back-off of `kiosk.trust.accounts.LoginThrottle` (the same rule, `backoff`), with
    the failures kept in the database: every process of the server counts them, so a guesser
    gains nothing by landing on another process, and a restart forgets nothing."""

    def __init__(self, storage, clock=time.time):
        self.storage, self._clock = storage, clock

    def wait_seconds(self, *keys: str) -> float:
        """How long the caller must still wait before trying these keys again (0: go ahead)."""
        keys, now = _keys(keys), self._clock()
        with self.storage.engine.connect() as conn:
            rows = conn.execute(select(login_failures.c.key, login_failures.c.at).where(
                login_failures.c.key.in_(keys), login_failures.c.at > now - LoginThrottle.WINDOW)
                .order_by(login_failures.c.at)).all()
        return max((backoff([at for k, at in rows if k == key], now) for key in keys), default=0.0)

    def failed(self, *keys: str) -> None:
        keys, now = _keys(keys), self._clock()
        with self.storage.write() as conn:
            conn.execute(delete(login_failures).where(login_failures.c.at < now - LoginThrottle.WINDOW))
            conn.execute(self.storage.insert(login_failures).on_conflict_do_nothing(),
                         [{"key": key, "at": now} for key in keys])

    def succeeded(self, *keys: str) -> None:
        with self.storage.write() as conn:
            conn.execute(delete(login_failures).where(login_failures.c.key.in_(_keys(keys))))


def _keys(keys) -> tuple[str, ...]:
    """Keys as stored: a long one (a user name typed at length) by its hash."""
    return tuple(k if len(k) <= 200 else "sha256:" + hashlib.sha256(k.encode()).hexdigest() for k in keys)
