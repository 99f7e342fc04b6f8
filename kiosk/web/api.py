"""The JSON API for scanners, tablets and scripts."""

from flask import Blueprint, jsonify

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/ping")
def ping():
    """A trivial endpoint: health checks, and the baseline of the check-in benchmark."""
    return jsonify({"ok": True})
