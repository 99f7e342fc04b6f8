"""Coordinator pages in real Chromium: what a new user sees before touching anything."""

import pytest

from support import log_in

pytestmark = pytest.mark.browser

MARKER = """summary => {
    const marker = getComputedStyle(summary, '::before');
    return {width: parseFloat(marker.width), border: marker.borderRightStyle, turn: marker.transform};
}"""


@pytest.mark.parametrize("path, card", [("/", "New program"), ("/sync/", "Import a USB file")])
def test_collapsed_cards_show_a_marker_that_turns_when_opened(event, accounts, kiosk_server, chromium, path, card):
    server = kiosk_server()
    page = chromium().new_page(viewport={"width": 360, "height": 740})
    log_in(page, server, "chief", next_path="/")
    page.goto(f"{server.url}{path}?lang=en")
    summary = page.locator("summary", has_text=card)
    closed = summary.evaluate(MARKER)
    assert closed["width"] > 5 and closed["border"] == "solid", closed  # a chevron is drawn
    summary.click()
    turned = "([s, before]) => s.parentElement.open && getComputedStyle(s, '::before').transform !== before"
    page.wait_for_function(turned, arg=[summary.element_handle(), closed["turn"]], timeout=5_000)
    assert summary.evaluate(MARKER)["turn"] != closed["turn"]
