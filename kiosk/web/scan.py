"""The door: the scan page staff keep open, and printable badges for forgotten ones.

The page talks to the JSON API (kiosk.web.api) for check-ins, counts and search.
"""

import io

from flask import Blueprint, abort, render_template, send_file

from kiosk.badges.drawing import PNG_DPI, badge_png
from kiosk.clock import local_day
from kiosk.door import screen as door
from kiosk.store.db import get_db
from kiosk.web.access import login_required

bp = Blueprint("scan", __name__, url_prefix="/scan")


@bp.get("")
@login_required()
def page():
    """The scan screen: badge scanner input, big result, running count, forgotten-badge search."""
    db = get_db()
    return render_template("scan.html", sessions=door.door_sessions(db), day=local_day())


@bp.get("/badges/<participant_id>.png", endpoint="badge_png")
@login_required()
def badge_image(participant_id):
    """A participant's current badge as a 300 dpi PNG, to print on the spot."""
    card = door.badge_of(get_db(), participant_id)
    if card is None:
        abort(404)
    buffer = io.BytesIO()
    badge_png(card).save(buffer, format="PNG", dpi=(PNG_DPI, PNG_DPI))
    buffer.seek(0)
    response = send_file(buffer, mimetype="image/png", max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response

