// The home page's counts follow the door: every 20 seconds the kiosk's own /api/sessions says how
// many have checked in to each of today's sessions. Numbers only; the page says the rest.
(function () {
  "use strict";
  const tiles = document.querySelector("[data-live-counts]");
  if (!tiles) return;

  async function refresh() {
    try {
      const answer = await fetch(tiles.dataset.liveCounts, {credentials: "same-origin", headers: {Accept: "application/json"}});
      if (!answer.ok) return;
      const body = await answer.json();
      for (const s of body.sessions || []) {
        const count = tiles.querySelector(`[data-count="${s.id}"]`);
        const meter = tiles.querySelector(`[data-meter="${s.id}"]`);
        if (count) count.textContent = s.checked_in;
        if (meter) meter.value = s.checked_in;
      }
    } catch (error) {
      // the laptop itself answers this page: a failed refresh only waits for the next one
    }
  }

  setInterval(refresh, 20000);
})();
