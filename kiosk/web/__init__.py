"""Blueprints, and what they share: login, language, CSRF, the one JSON error shape."""

from flask import current_app, render_template, send_from_directory, session
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect

from kiosk import thai
from kiosk.clock import LOCAL_ZONE, parse_iso
from kiosk.errors import message_of
from kiosk.thai import as_date
from kiosk.web.access import current_user, role_label
from kiosk.webcommon import (LANGUAGES, error_response, init_babel, install_error_handlers,
                              install_form_limit, serve_font, wants_json)

csrf = CSRFProtect()


def thai_date(day, short: bool = False, lang: str | None = None, digits: bool = False) -> str:
    """A date in the page's language; in Thai with the Buddhist-era year (kiosk.thai.thai_date)."""
    if (lang or _current_lang()) == "en":
        return as_date(day).strftime("%d %b %Y" if short else "%d %B %Y").lstrip("0")
    return thai.thai_date(day, short=short, digits=digits)


def local_datetime(stamp: str | None) -> str:
    """A stored UTC time as venue date and time: '22 พ.ย. 2569 07:15'."""
    if not stamp:
        return ""
    moment = parse_iso(stamp).astimezone(LOCAL_ZONE)
    return f"{thai_date(moment.date(), short=True)} {moment:%H:%M}"


def _current_lang() -> str:
    try:
        return session.get("lang", "th")
    except RuntimeError:
        return "th"


def _handle_csrf(exc: CSRFError):
    if wants_json():
        return error_response("csrf", exc.description)
    return render_template("error.html", message=_(message_of("csrf")), status=400), 400


def register_web(app) -> None:
    """Wires the blueprints and shared helpers into the app."""
    from kiosk.ops import log
    from kiosk.web import admin, api, auth_views, health, register, reports, scan, security, sync_page
    import sync

    init_babel(app)
    install_form_limit(app)  # before CSRF, which reads the form
    csrf.init_app(app)
    install_error_handlers(app)
    security.install(app)
    app.register_error_handler(CSRFError, _handle_csrf)
    app.jinja_env.filters["thai_date"] = thai_date
    app.jinja_env.filters["role"] = role_label
    app.jinja_env.filters["local_datetime"] = local_datetime
    app.jinja_env.globals.update(current_user=current_user, languages=LANGUAGES)
    log.init_app(app)
    for module in (auth_views, admin, api, health, scan, sync_page, reports, register):
        app.register_blueprint(module.bp)
    app.register_blueprint(reports.public)
    csrf.exempt(api.bp)
    sync.register_peer(app)
    app.add_url_rule("/fonts/<name>", "font", serve_font)
    app.add_url_rule("/ca.pem", "ca_certificate", _ca_certificate)
    app.jinja_env.globals["url_map_endpoints"] = set(app.view_functions)


def _ca_certificate():
    """The kiosk's local CA, for tablets to install once before using camera scanning over HTTPS."""
    return send_from_directory(current_app.config["DATA_DIR"], "ca.pem", mimetype="application/x-x509-ca-cert")
