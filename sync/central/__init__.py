"""The central server: a Flask app storing every device's changes, with coordinators' dashboards.

`create_app(config)` reads CENTRAL_DATABASE (an SQLAlchemy URL; default an SQLite file in
CENTRAL_DATA), then `KIOSK_CENTRAL_*` environment variables (KIOSK_CENTRAL_PROXIES=1 behind one
reverse proxy that ends TLS). Several processes may serve one PostgreSQL database: what they
must agree on (nonces, login sessions, the login back-off, the cookie key, the server's
identity) lives in the database, never in a process.
"""

import os
import secrets
from pathlib import Path

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from kiosk.paths import asset_dir, make_private
from kiosk.webkit.assets import serve_font
from kiosk.webkit.errors import install_error_handlers
from kiosk.webkit.language import current_language, init_babel
from kiosk.webkit.security import (
    MAX_FORM_MEMORY_SIZE,
    install_form_limit,
    install_json_limit,
    install_security_headers,
)
from sync.central.api import CentralBackend
from sync.central.storage import Storage
from sync.central.storage.accounts import SharedThrottle
from sync.server import make_blueprint


def default_url(data: str | os.PathLike) -> str:
    return f"sqlite:///{Path(data).resolve() / 'central.db'}"


def create_app(config: dict | None = None) -> Flask:
    """The central server's app; one Storage per app, at `app.extensions['central_storage']`."""
    app = Flask(__name__, template_folder=str(asset_dir("templates")), static_folder=str(asset_dir("static")))
    app.config.from_mapping(CENTRAL_DATA=os.environ.get("KIOSK_CENTRAL_DATA", "central-data"),
                            CENTRAL_DATABASE=None, BABEL_DEFAULT_LOCALE="th",
                            BABEL_TRANSLATION_DIRECTORIES=str(asset_dir("translations")),
                            MAX_CONTENT_LENGTH=None, MAX_FORM_MEMORY_SIZE=MAX_FORM_MEMORY_SIZE,
                            SESSION_COOKIE_NAME="kiosk_central_session",
                            SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                            SESSION_COOKIE_SECURE=False, PERMANENT_SESSION_LIFETIME=12 * 3600)
    app.config.from_prefixed_env("KIOSK_CENTRAL")
    app.config.from_mapping(config or {})
    if int(app.config.get("PROXIES") or 0):  # behind N reverse proxies (TLS ends there): their X-Forwarded-*
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=int(app.config["PROXIES"]), x_proto=int(app.config["PROXIES"]),
                                x_host=int(app.config["PROXIES"]))
    Path(app.config["CENTRAL_DATA"]).mkdir(parents=True, exist_ok=True)
    url = app.config["CENTRAL_DATABASE"] or default_url(app.config["CENTRAL_DATA"])
    storage = Storage(url)
    make_private(app.config["CENTRAL_DATA"])  # central.db, its WAL and keys: the owner's alone
    storage.prune_nonces()  # replays are refused for NONCE_DAYS; older nonces are let go at start
    app.extensions["central_storage"] = storage
    # the cookie key is the database's, made once by the first process: every process reads the same
    app.config["SECRET_KEY"] = app.config.get("SECRET_KEY") or storage.meta_once("secret_key", _new_key)
    app.extensions["login_throttle"] = SharedThrottle(storage)  # shared by every process of the server
    init_babel(app)
    # <html lang> names the page's language even on the request that chose it (?lang=), before the
    # session remembers it
    app.jinja_env.globals.update(current_language=current_language)
    backend = CentralBackend(storage)
    sync_api = make_blueprint("central_sync", lambda: backend)
    app.register_blueprint(sync_api)
    from sync.central import dashboard_views, report_views, views
    app.register_blueprint(views.bp)
    app.register_blueprint(dashboard_views.bp)
    report_views.register(app)
    install_form_limit(app)  # before CSRF, which reads the form
    install_json_limit(app)
    csrf = CSRFProtect(app)
    csrf.exempt(sync_api)  # devices sign their requests instead
    install_error_handlers(app, page="central/error.html")
    install_security_headers(app)  # the kiosk's own: the same CSP, nosniff, no framing, no-store
    app.add_url_rule("/fonts/<name>", "font", serve_font)  # Sarabun from the installed package, as on kiosks
    return app


def _new_key() -> str:
    return secrets.token_hex(32)
