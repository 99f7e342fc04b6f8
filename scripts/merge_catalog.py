"""Merges Thai translations from other catalogs into ours (after a git merge of messages.po).

Usage: .venv/bin/python scripts/merge_catalog.py OTHER.po [OTHER.po ...]
Ours is re-extracted first; a message without Thai takes the first translation the others give.
"""

import sys

from babel.messages.pofile import read_po, write_po

from kiosk.i18n import compile_all, po_path, update


def main(others: list[str]) -> None:
    update()
    known = {}
    for other in others:
        with open(other, "rb") as f:
            for message in read_po(f, locale="th"):
                if message.id and message.string:
                    known.setdefault(message.id, message.string)
    path = po_path("th")
    with path.open("rb") as f:
        catalog = read_po(f, locale="th")
    for message in catalog:
        if message.id and not message.string and message.id in known:
            message.string = known[message.id]
    with path.open("wb") as f:
        write_po(f, catalog, width=0, omit_header=False, ignore_obsolete=True)
    compile_all()
    missing = [m.id for m in catalog if m.id and not m.string]
    print(len(missing), "untranslated", *missing[:20], sep="\n")


if __name__ == "__main__":
    main(sys.argv[1:])
