"""Files both web apps serve from installed packages: the Sarabun font, never from the internet."""

from flask import send_from_directory
from fontpkg_sarabun import ROOT


def serve_font(name: str):
    """Sarabun, served from the installed font package: no web font comes from the internet."""
    return send_from_directory(ROOT / "files", name, max_age=86400)
