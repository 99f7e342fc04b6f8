"""Translations: extract the messages of code and templates, update the Thai catalog, compile.

The source strings are English; Thai is the default language, so every message needs its
Thai translation (a test checks). Run after changing strings:

    python -m kiosk.i18n extract   # refresh translations/th/LC_MESSAGES/messages.po
    python -m kiosk.i18n compile   # write the .mo files Flask-Babel reads
"""

import functools
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from kiosk.paths import PACKAGE, asset_dir

LOCALES = ("th",)  # English is the msgid itself
METHODS = [("**.py", "python"), ("**.html", "jinja2")]
OPTIONS = {"**.html": {"extensions": "jinja2.ext.do"}}


def po_path(locale: str) -> Path:
    return asset_dir("translations") / locale / "LC_MESSAGES" / "messages.po"


def extract() -> Catalog:
    """Every translatable string of the kiosk, the sync part and the templates."""
    catalog = Catalog(project="attendance-kiosk", charset="utf-8")
    roots = [PACKAGE, PACKAGE.parent / "sync", asset_dir("templates")]
    for root in roots:
        if not root.is_dir():
            continue
        for filename, lineno, message, comments, context in extract_from_dir(
                root, METHODS, options_map=OPTIONS, keywords={"_": None, "gettext": None, "_l": None, "N_": None,
                                                               "lazy_gettext": None, "ngettext": (1, 2)}):
            where = (root / filename).relative_to(PACKAGE.parent) if (root / filename).is_relative_to(PACKAGE.parent) else root / filename
            catalog.add(message, None, [(where.as_posix(), lineno)], auto_comments=comments, context=context)
    return catalog


def update() -> dict[str, int]:
    """Merges the extracted strings into each locale's catalog; returns untranslated counts."""
    template = extract()
    missing = {}
    for locale in LOCALES:
        path = po_path(locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open("rb") as f:
                catalog = read_po(f, locale=locale)
        else:
            catalog = Catalog(locale=locale, project="attendance-kiosk", charset="utf-8")
        catalog.update(template, no_fuzzy_matching=True)
        with path.open("wb") as f:
            write_po(f, catalog, width=0, omit_header=False, ignore_obsolete=True)
        missing[locale] = sum(1 for m in catalog if m.id and not m.string)
    return missing


@functools.cache
def translations(locale: str):
    """The compiled catalog of `locale`, for text shown outside a web request (the CLI)."""
    from babel.support import Translations

    return Translations.load(str(asset_dir("translations")), [locale])


def compile_all() -> None:
    """Writes messages.mo beside each messages.po."""
    for locale in LOCALES:
        path = po_path(locale)
        if not path.exists():
            continue
        with path.open("rb") as f:
            catalog = read_po(f, locale=locale)
        with path.with_suffix(".mo").open("wb") as f:
            write_mo(f, catalog, use_fuzzy=False)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "compile"
    if command == "extract":
        print(update())
    compile_all()
