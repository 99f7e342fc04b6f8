"""Fills Thai translations into the catalog from a Python file holding a dict `TH` (msgid -> Thai).

Usage: .venv/bin/python scripts/translate.py FILE.py   (then `python -m kiosk.i18n compile`)
"""

import runpy
import sys

from babel.messages.pofile import read_po, write_po

from kiosk.i18n import po_path


def main(source: str) -> None:
    translations = runpy.run_path(source)["TH"]
    path = po_path("th")
    with path.open("rb") as f:
        catalog = read_po(f, locale="th")
    for message in catalog:
        if message.id in translations and not message.string:
            message.string = translations[message.id]
    with path.open("wb") as f:
        write_po(f, catalog, width=0, omit_header=False, ignore_obsolete=True)
    print(sum(1 for m in catalog if m.id and not m.string), "untranslated")


if __name__ == "__main__":
    main(sys.argv[1])
