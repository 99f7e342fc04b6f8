// The door's scan page: a badge scanner types the code and Enter; we post it and show the result.
//
// A USB/Bluetooth scanner is a keyboard. Under a Thai (Kedmanee) layout the same physical keys
// give Thai letters in `event.key`, so codes are read from `event.code` (the physical key) and a
// warning appears when Thai letters arrive. Every scan carries a random nonce, so a retry after a
// lost answer cannot check anyone in twice.
(function () {
  "use strict";

  const door = document.getElementById("door");
  if (!door) return;
  const data = JSON.parse(document.getElementById("scan-data").textContent);
  const text = data.text;
  const $ = (id) => document.getElementById(id);
  const input = $("scan-code");
  const sessionSelect = $("scan-session");
  const result = $("scan-result");
  const searchBox = $("people-q");
  const peopleList = $("people-results");
  const badgeDialog = $("badge-dialog");
  const coarse = window.matchMedia && window.matchMedia("(pointer: coarse)").matches;
  const THAI = /[\u0E00-\u0E7F]/;

  let sessions = data.sessions || [];
  let lastSessionId = null;
  let hideTimer = null;
  let warningTimer = null;

  // --- physical keys ------------------------------------------------------------------------

  function charForKey(code) {
    let m = /^Key([A-Z])$/.exec(code);
    if (m) return m[1];
    m = /^(?:Digit|Numpad)([0-9])$/.exec(code);
    if (m) return m[1];
    if (code === "Minus" || code === "NumpadSubtract") return "-";
    return null;
  }

  function ownedByOtherField(target) {
    if (target === input) return false;
    return !!(target && target.closest &&
              target.closest("input:not([type=radio]), textarea, select, dialog, [contenteditable]"));
  }

  function insert(ch) {
    const start = input.selectionStart ?? input.value.length;
    const end = input.selectionEnd ?? input.value.length;
    input.value = input.value.slice(0, start) + ch + input.value.slice(end);
    input.setSelectionRange(start + ch.length, start + ch.length);
  }

  // A link or a button someone reached with Tab keeps its own Enter and Space. A scanner never
  // leaves one focused when it sends Enter: its first character already moved focus to the field.
  function activatedByKeyboard(target, event) {
    if (target === input || !(target && target.closest)) return false;
    const control = target.closest("a[href], button, summary, [role=button], input[type=radio]");
    return !!control && (event.key === "Enter" || event.key === " " || event.code === "Space");
  }

  function onKeyDown(event) {
    if (ownedByOtherField(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (activatedByKeyboard(event.target, event)) return;
    if (event.key && event.key.length === 1 && THAI.test(event.key)) showLayoutWarning();
    if (event.code === "Enter" || event.code === "NumpadEnter" || event.key === "Enter") {
      event.preventDefault();
      submitScan();
      return;
    }
    const ch = charForKey(event.code);
    if (ch !== null) {
      event.preventDefault();
      if (document.activeElement !== input) input.focus({ preventScroll: true });
      insert(ch);
    } else if (event.code === "Backspace" && event.target !== input) {
      event.preventDefault();
      input.value = input.value.slice(0, -1);
    }
    // Anything else (a phone's soft keyboard sends no `code`) goes to the field as usual.
  }

  function showLayoutWarning() {
    const warning = $("layout-warning");
    warning.hidden = false;
    clearTimeout(warningTimer);
    warningTimer = setTimeout(() => { warning.hidden = true; }, 10000);
  }

  // --- focus: the scan field takes it back by itself ----------------------------------------

  function refocus() {
    if (coarse || badgeDialog.open) return;
    const active = document.activeElement;
    if (active && active !== document.body && active !== input && active !== result) return;
    input.focus({ preventScroll: true });
  }

  // Choosing arriving/leaving hands the keyboard straight back to the scanner.
  document.querySelectorAll("input[name=scan-direction]").forEach((radio) =>
    radio.addEventListener("change", () => input.focus({ preventScroll: true })));

  // --- posting a scan -----------------------------------------------------------------------

  function nonce() {
    // crypto.randomUUID needs a secure context; a LAN kiosk is plain http.
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function postJSON(url, body, retries) {
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await fetch(url, {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "Accept": "application/json" },
          body: JSON.stringify(body),
        });
        let json = null;
        try { json = await response.json(); } catch (e) { /* not JSON: handled below */ }
        return { status: response.status, json };
      } catch (err) {
        // Network error: the same nonce makes the retry safe.
        if (attempt >= retries) return { status: 0, json: null };
        await new Promise((r) => setTimeout(r, 300 * (attempt + 1)));
      }
    }
  }

  // A code seen by the camera (camera.js) goes the same way as a scanner's Enter.
  document.addEventListener("kiosk:code", (event) => sendCheckin({ code: String(event.detail) }));

  function submitScan() {
    const code = input.value.replace(/\s+/g, "");
    input.value = "";
    if (!code) return;
    sendCheckin({ code });
  }

  async function sendCheckin(payload) {
    const madeAt = new Date().toISOString();
    payload.nonce = nonce();
    if (sessionSelect.value) payload.session = sessionSelect.value;
    const mode = document.querySelector("input[name=scan-direction]:checked");
    if (mode && mode.value === "out") payload.direction = "out";
    if (mode && mode.value === "paper") payload.paper = true;
    const answer = await postJSON(door.dataset.checkinsUrl, payload, 2);
    if (answer.status === 0 && outbox) {
      // The kiosk cannot be reached: keep the scan here with its nonce and real time.
      const kept = { ...payload, ...outbox.lastContact("scan"), at: madeAt, queued: true };
      await outbox.put({ key: payload.nonce, kind: "scan", made_at: madeAt, body: kept });
      showResult("queued", "⇡", text.saved, "", text.saved_detail, "");
      updateQueueNote();
      return answer;
    }
    showAnswer(answer);
    if (answer.json && answer.json.session) lastSessionId = answer.json.session.id;
    refreshCount();
    refocus();
    return answer;
  }

  // --- the result screen --------------------------------------------------------------------

  function participantLine(p) {
    if (!p) return "";
    return [p.position, p.area, p.role_name].filter(Boolean).join(" · ");
  }

  function showAnswer({ status, json }) {
    if (status === 401) {
      return showResult("error", "✕", text.rejected, "", text.logged_out, "");
    }
    if (!json) {
      return showResult("error", "✕", text.rejected, "", text.offline, "");
    }
    const p = json.participant;
    const name = p ? p.name : "";
    if (json.ok && json.status === "already_checked_in") {
      const time = text.first_at.replace("{time}", json.first_checked_in_time || "");
      return showResult("repeat", "↺", text.already_checked_in, name, participantLine(p), time);
    }
    if (json.ok && json.status === "checked_out") {  // leaving: another colour, another arrow
      return showResult("out", "⇦", text.checked_out, name, participantLine(p),
                        json.session ? `${text.cohort} ${json.session.cohort_number}` : "");
    }
    if (json.ok) {
      return showResult("ok", "✓", text[json.status] || text.checked_in, name, participantLine(p),
                        json.session ? `${text.cohort} ${json.session.cohort_number}` : "");
    }
    showResult("error", "✕", text.rejected, name, json.error || text.rejected, "");
  }

  function showResult(kind, icon, status, name, detail, time) {
    result.className = "scan-result " + kind;
    result.dataset.kind = kind;
    $("result-icon").textContent = icon;
    $("result-status").textContent = status;
    $("result-name").textContent = name;
    $("result-detail").textContent = detail;
    $("result-time").textContent = time;
    $("result-foot").textContent = text.tap;
    result.hidden = false;
    playSound(kind === "out" ? "ok" : kind);
    clearTimeout(hideTimer);
    hideTimer = setTimeout(hideResult, kind === "ok" || kind === "out" ? 3500 : 6000);
  }

  function hideResult() {
    result.hidden = true;
    refocus();
  }

  const sounds = {};
  for (const [name, url] of Object.entries(data.sounds)) {
    sounds[name] = new Audio(url);
    sounds[name].preload = "auto";
  }

  function playSound(kind) {
    const audio = sounds[kind];
    if (!audio) return;
    try {
      audio.currentTime = 0;
      const playing = audio.play();
      if (playing && playing.catch) playing.catch(() => {});
    } catch (e) { /* no audio device: the colours still tell */ }
  }

  // --- the running count --------------------------------------------------------------------

  function countSessionId() {
    if (sessionSelect.value) return sessionSelect.value;
    if (lastSessionId) return lastSessionId;
    const open = sessions.find((s) => s.open);
    return open ? open.id : null;
  }

  async function refreshCount() {
    const id = countSessionId();
    if (!id) {
      const next = sessions.find((s) => s.state === "not_yet");
      $("count-in").textContent = "–";
      $("count-expected").textContent = "–";
      $("count-label").textContent = next ? text.opens_at.replace("{time}", next.opens_at) : text.no_session;
      $("count-roles").replaceChildren();
      return;
    }
    try {
      const response = await fetch(door.dataset.attendanceUrl.replace("SESSION", encodeURIComponent(id)),
                                   { credentials: "same-origin" });
      if (!response.ok) return;
      const counts = await response.json();
      $("count-in").textContent = counts.checked_in;
      $("count-expected").textContent = counts.expected;
      $("count-label").textContent = `${text.count_label} · ${text.cohort} ${counts.session.cohort_number}`;
      const roles = Object.entries(counts.by_role).map(([role, c]) => {
        const li = document.createElement("li");
        li.textContent = `${text.roles[role] || role} ${c.checked_in}/${c.expected}`;
        return li;
      });
      $("count-roles").replaceChildren(...roles);
    } catch (e) { /* offline for a moment: the next refresh will tell */ }
  }

  async function refreshSessions() {
    try {
      const response = await fetch(door.dataset.sessionsUrl, { credentials: "same-origin" });
      if (response.ok) sessions = (await response.json()).sessions;
    } catch (e) { /* keep the list we have */ }
  }

  // --- forgotten badge: search, check in, reprint -------------------------------------------

  let searchTimer = null;
  let searchSeq = 0;

  async function runSearch() {
    const q = searchBox.value.trim();
    const seq = ++searchSeq;
    if (q.length < 2) { peopleList.replaceChildren(); return; }
    const params = new URLSearchParams({ q });
    const sid = countSessionId();
    if (sid) params.set("session", sid);
    try {
      const response = await fetch(`${door.dataset.searchUrl}?${params}`, { credentials: "same-origin" });
      const body = await response.json();
      if (seq !== searchSeq) return; // a newer search is on its way
      renderPeople(body.participants || []);
    } catch (e) { /* offline: leave the old list */ }
  }

  function button(label, className, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = className;
    b.textContent = label;
    b.addEventListener("click", onClick);
    return b;
  }

  function renderPeople(people) {
    if (!people.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = text.no_match;
      peopleList.replaceChildren(li);
      return;
    }
    peopleList.replaceChildren(...people.map(personItem));
  }

  function personItem(p) {
    const li = document.createElement("li");
    li.className = "person" + (p.status === "withdrawn" ? " withdrawn" : "");
    const who = document.createElement("div");
    who.className = "who";
    const name = document.createElement("b");
    name.textContent = p.name;
    const about = document.createElement("span");
    about.className = "muted";
    const bits = [p.position, p.area, p.role_name];
    if (p.phone_tail) bits.push(`${text.phone} …${p.phone_tail}`);
    about.textContent = bits.filter(Boolean).join(" · ");
    who.append(name, about);
    if (p.checked_in_time || p.status !== "active") {
      const tag = document.createElement("span");
      tag.className = "tag " + ({ withdrawn: "bad", waiting: "wait" }[p.status] || "in");
      tag.textContent = p.status === "active" ? text.in_at.replace("{time}", p.checked_in_time)
        : (text[p.status] || p.status);
      who.append(tag);
    }
    const actions = document.createElement("div");
    actions.className = "actions";
    li.append(who, actions);
    if (p.status === "waiting") return li;  // no seat, no badge: a coordinator admits them first
    actions.append(
      button(text.check_in, "primary", async () => {
        await sendCheckin({ participant_id: p.id });
        runSearch();
      }),
      button(text.reprint, "", () => reprint(p)),
    );
    return li;
  }

  async function reprint(p) {
    if (!window.confirm(text.reprint_confirm)) return;
    const answer = await postJSON(door.dataset.badgeUrl.replace("PERSON", encodeURIComponent(p.id)), {}, 0);
    if (!answer.json || !answer.json.ok) return showAnswer(answer);
    $("badge-img").src = answer.json.badge_url;
    badgeDialog.showModal();
  }

  // --- scans kept on this tablet while the kiosk was unreachable ----------------------------

  const outbox = window.KioskOutbox;

  async function updateQueueNote() {
    const note = $("queue-note");
    if (!note || !outbox) return;
    const n = await outbox.count("scan").catch(() => 0);
    note.textContent = n ? text.pending.replace("{n}", n) : "";
    note.hidden = !n;
  }

  if (outbox) {
    outbox.keepInTouch("scan", door.dataset.contactUrl, (url, body) => postJSON(url, body, 0));
    outbox.keepFlushing("scan", (item) => postJSON(door.dataset.checkinsUrl, item.body, 0), () => {
      updateQueueNote();
      refreshCount();
    });
    updateQueueNote();
  }

  // --- wiring -------------------------------------------------------------------------------

  document.addEventListener("keydown", onKeyDown, true);
  $("scan-form").addEventListener("submit", (event) => { event.preventDefault(); submitScan(); });
  input.addEventListener("blur", () => setTimeout(refocus, 200));
  result.addEventListener("click", hideResult);
  sessionSelect.addEventListener("change", () => { lastSessionId = null; refreshCount(); input.focus(); });
  searchBox.addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(runSearch, 250); });
  searchBox.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { searchBox.value = ""; peopleList.replaceChildren(); input.focus(); }
  });
  $("badge-print").addEventListener("click", () => window.print());
  $("badge-close").addEventListener("click", () => { badgeDialog.close(); input.focus(); });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) { refreshCount(); refocus(); } });
  setInterval(refocus, 1000);
  setInterval(refreshCount, 10000);
  setInterval(refreshSessions, 60000);
  refreshCount();
  refocus();
})();
