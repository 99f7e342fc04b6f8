"""Coordinators' accounts on the central server: the same rules as a kiosk's, a one-time set-up code."""

import hmac
import uuid

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from kiosk.auth import AuthError, check_account
from kiosk.clock import iso, now_utc
from sync import auth
from sync.central.storage.tables import meta, users

_DUMMY_HASH = generate_password_hash("timing-equaliser")


class Accounts:
    """Coordinators' accounts (a part of Storage)."""

    def add_user(self, username: str, password: str, conn=None) -> str:
        """A coordinator account on the central server; the password kept as a salted scrypt hash.

        Raises kiosk.auth.AuthError (bad_username, weak_password, duplicate_user), as on a kiosk.
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
        return dict(user) if user and ok else None

    def user(self, user_id: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users.c.id, users.c.username).where(users.c.id == user_id)).mappings().first()
        return dict(row) if row else None

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

