"""The user's language (Thai first, English second), Thai dates, and role names as users read them."""

import functools

from flask import request, session
from flask_babel import Babel, get_locale
from flask_babel import lazy_gettext as _l

from kiosk import thai
from kiosk.clock import LOCAL_ZONE, parse_iso
from kiosk.thai import as_date

LANGUAGES = ("th", "en")
ROLE_LABELS = {"participant": _l("Participant"), "speaker": _l("Speaker"), "staff": _l("Staff"),
               "observer": _l("Observer"), "coordinator": _l("Coordinator")}


def select_locale() -> str:
    """The language the user picked (?lang= remembered in the session, or a `lang` cookie), else Thai.

    Anything but a known language is ignored, never an error.
    """
    chosen = request.args.get("lang")
    if chosen in LANGUAGES:
        session["lang"] = chosen
        return chosen
    remembered = session.get("lang") or request.cookies.get("lang")
    return remembered if remembered in LANGUAGES else "th"


def init_babel(app) -> None:
    """Flask-Babel with the one locale selector."""
    Babel(app, locale_selector=select_locale)


def current_language() -> str:
    """The page's language code; Thai outside a request."""
    locale = get_locale()
    return locale.language if locale is not None else "th"


def thai_date(day, short: bool = False, lang: str | None = None, digits: bool = False) -> str:
    """A date in the page's language; in Thai with the Buddhist-era year (kiosk.thai.thai_date)."""
    if (lang or current_language()) == "en":
        return as_date(day).strftime("%d %b %Y" if short else "%d %B %Y").lstrip("0")
    return thai.thai_date(day, short=short, digits=digits)


def local_datetime(stamp: str | None) -> str:
    """A stored UTC time as venue date and time: '22 พ.ย. 2569 07:15'."""
    if not stamp:
        return ""
    moment = parse_iso(stamp).astimezone(LOCAL_ZONE)
    return f"{thai_date(moment.date(), short=True)} {moment:%H:%M}"


def role_label(role: str | None) -> str:
    """A role code as the user reads it."""
    return _role_label(current_language(), role)


@functools.lru_cache(maxsize=64)
def _role_label(language: str, role: str | None) -> str:
    return str(ROLE_LABELS.get(role, role or ""))  # in `language`: the request's, as lazy_gettext reads it
