"""Thai first: every string of the code and templates has its Thai translation, compiled."""

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from kiosk.i18n import extract, po_path


def test_every_message_of_code_and_templates_is_translated_to_thai():
    with po_path("th").open("rb") as f:
        catalog = read_po(f, locale="th")
    missing = [m.id for m in extract() if m.id and not (catalog.get(m.id) and catalog.get(m.id).string)]
    assert missing == []


def test_the_compiled_catalog_matches_the_po_file():
    with po_path("th").open("rb") as f:
        source = {m.id: m.string for m in read_po(f, locale="th") if m.id}
    with po_path("th").with_suffix(".mo").open("rb") as f:
        compiled = {m.id: m.string for m in read_mo(f) if m.id}
    assert compiled == source
