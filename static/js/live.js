// The live rooms page: fetches the counts every 15 seconds and updates the numbers in place.
const status = document.getElementById("live-status");
const source = status && status.dataset.source;
const format = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("th-TH"));
const share = (p) => (p === null || p === undefined ? "–" : p.toFixed(1));

async function refresh() {
  try {
    const answer = await fetch(source, { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!answer.ok) return;
    const data = await answer.json();
    document.getElementById("live-present").textContent = format(data.present);
    document.getElementById("live-percent").textContent = share(data.percent);
    for (const room of data.rooms) {
      const row = [...document.querySelectorAll("#rooms tr[data-room]")].find((r) => r.dataset.room === room.room);
      if (!row) continue;  // a room new since the page loaded appears at the next reload
      row.querySelector(".present").textContent = format(room.present);
      row.querySelector(".percent").textContent = share(room.percent);
    }
  } catch (error) {
    // the server is unreachable for a moment: the numbers shown stay, the next round tries again
  }
}
if (source) setInterval(refresh, 15000);
