"""Blueprints, and what they share: login, language, CSRF, the one JSON error shape."""

from flask import current_app, render_template, send_from_directory
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect

from kiosk.errors import message_of
from kiosk.web.access import current_user
from kiosk.webkit.assets import serve_font
from kiosk.webkit.errors import error_response, install_error_handlers, wants_json
from kiosk.webkit.language import LANGUAGES, current_language, init_babel, local_datetime, role_label, thai_date
from kiosk.webkit.security import install_form_limit

csrf = CSRFProtect()


def _handle_csrf(exc: CSRFError):
    if wants_json():
        return error_response("csrf", exc.description)
    return render_template("error.html", message=_(message_of("csrf")), status=400), 400


def register_web(app) -> None:
    """Wires the blueprints and shared helpers into the app."""
    import sync
    from kiosk.ops import log
    from kiosk.web import admin, api, auth_views, health, register, reports, scan, security, sync_page

    init_babel(app)
    install_form_limit(app)  # before CSRF, which reads the form
    csrf.init_app(app)
    install_error_handlers(app)
    security.install(app)
    app.register_error_handler(CSRFError, _handle_csrf)
    app.jinja_env.filters["thai_date"] = thai_date
    app.jinja_env.filters["role"] = role_label
    app.jinja_env.filters["local_datetime"] = local_datetime
    app.jinja_env.globals.update(current_user=current_user, languages=LANGUAGES, current_language=current_language)
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
