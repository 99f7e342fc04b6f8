"""Who may see a page: the logged-in staff member or token bearer, the coordinator role, role names.

Blueprints import these from here; `kiosk.web` wires the blueprints, so nothing imports in a circle.
"""

import functools

from flask import g, redirect, render_template, request, session, url_for
from flask_babel import get_locale, gettext as _, lazy_gettext as _l

from kiosk import auth
from kiosk.db import get_db
from kiosk.webcommon import error_response, wants_json


ROLE_LABELS = {"participant": _l("Participant"), "speaker": _l("Speaker"), "staff": _l("Staff"),
               "observer": _l("Observer"), "coordinator": _l("Coordinator")}


# The labels in each language, translated once: every check-in answer names the person's role.
_LABELS_IN: dict = {}


def role_label(role: str | None) -> str:
    """A role code as the user reads it."""
    locale = get_locale()
    if locale is None:  # outside a request
        return str(ROLE_LABELS.get(role, role or ""))
    labels = _LABELS_IN.get(locale)
    if labels is None:
        labels = _LABELS_IN[locale] = {code: str(label) for code, label in ROLE_LABELS.items()}
    return labels.get(role, role or "")


def current_user() -> dict | None:
    """The logged-in staff member (session) or the bearer of a valid API token."""
    if "user" not in g:
        g.user = None
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            g.user = auth.user_for_token(get_db(), header[7:].strip())
        elif session.get("login"):
            g.user = auth.session_user(get_db(), session["login"])
    return g.user


def login_required(role: str | None = None):
    """Staff pages and APIs: a login (or token), and the coordinator role where asked."""
    def decorate(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            user = current_user()
            if user is None:
                if wants_json():
                    return error_response("unauthenticated")
                return redirect(url_for("auth.login", next=request.full_path))
            if role and user["role"] != role:
                if wants_json():
                    return error_response("forbidden", _("This needs a coordinator account."))
                return render_template("error.html", message=_("This page needs a coordinator account."), status=403), 403
            return view(*args, **kwargs)
        return wrapped
    return decorate
