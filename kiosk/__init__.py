"""The venue kiosk: a Flask app on the venue laptop, working with no internet."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.paths import asset_dir, data_dir, write_atomically

if TYPE_CHECKING:  # Flask is imported by create_app only: the domain modules work without it
    from flask import Flask


def _secret_key(folder: Path) -> str:
    """The session-signing key, made once per data folder and kept out of the repository."""
    path = folder / "secret_key"
    if not path.exists():
        write_atomically(path, secrets.token_hex(32))
    return path.read_text().strip()


def create_app(config: dict | None = None) -> Flask:
    """The app factory: defaults, then the instance file, then `KIOSK_*` variables, then `config`."""
    from flask import Flask

    from kiosk.webkit.security import MAX_FORM_MEMORY_SIZE

    app = Flask(
        __name__,
        static_folder=str(asset_dir("static")),
        template_folder=str(asset_dir("templates")),
    )
    app.config.from_mapping(
        DATA_DIR=None,
        MAX_CONTENT_LENGTH=60 * 1024 * 1024,
        MAX_FORM_MEMORY_SIZE=MAX_FORM_MEMORY_SIZE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=12 * 3600,
        SESSION_REFRESH_EACH_REQUEST=False,  # a cookie is written when the session changes, never by a stray parallel request
        BABEL_DEFAULT_LOCALE="th",
        BABEL_DEFAULT_TIMEZONE="Asia/Bangkok",
        BABEL_TRANSLATION_DIRECTORIES=str(asset_dir("translations")),
        WTF_CSRF_TIME_LIMIT=None,
        TIMEZONE="Asia/Bangkok",
        HTTPS=False,
    )
    app.config.from_pyfile("kiosk.cfg", silent=True)
    app.config.from_prefixed_env("KIOSK")
    if config:
        app.config.from_mapping(config)
    folder = data_dir(app.config["DATA_DIR"])
    app.config["DATA_DIR"] = str(folder)
    app.config.setdefault("DATABASE", str(folder / "kiosk.db"))
    app.config["SECRET_KEY"] = app.config.get("SECRET_KEY") or _secret_key(folder)
    app.config["SESSION_COOKIE_SECURE"] = bool(app.config["HTTPS"])

    from kiosk.store import db
    from kiosk.web import register_web

    db.init_app(app)
    register_web(app)
    return app
