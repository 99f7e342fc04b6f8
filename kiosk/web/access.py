"""Who may see a page: the logged-in staff member or token bearer, the coordinator role, role names.

Blueprints import these from here; `kiosk.web` wires the blueprints, so nothing imports in a circle.
"""

import functools

from flask import g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from kiosk.store.db import get_db
from kiosk.trust import accounts as auth
from kiosk.webkit.errors import error_response, wants_json


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
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if role and user["role"] != role:
                if wants_json():
                    return error_response("forbidden", _("This needs a coordinator account."))
                return render_template("error.html", message=_("This page needs a coordinator account."), status=403), 403
            return view(*args, **kwargs)
        return wrapped
    return decorate
