// The registration tablet: a walk-in fills the form, gets a badge on screen.
//
// Areas narrow as one types (geothai lists served by the kiosk), the national ID's check digit is
// verified as one types, every field's message appears beside it (and is tied to its field for
// screen readers). A form sent while the kiosk cannot be reached is kept on the tablet
// (outbox.js) with its submission key and the time it was made, counted from the laptop's signed
// time of the last contact, and sent by itself later. After the idle time the page asks "still
// there?" and counts down; then it forgets the person: it reloads itself in place (no history
// entry) and keeps nothing in storage but unsent forms.
(function () {
  "use strict";

  const root = document.getElementById("register");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const text = JSON.parse($("register-text").textContent);
  const form = $("reg-form");
  const Outbox = window.KioskOutbox;
  const LEVELS = ["province", "district", "subdistrict"];
  const SEND_WAIT_MS = 8000;
  const english = root.dataset.lang === "en";

  let key = Outbox.uid();
  let sending = false;
  let areas = null;        // [[code, th, en, children], ...]
  let idleTimer = null;
  let printWindow = null;

  // --- areas: lists that narrow as one types ------------------------------------------------

  const PREFIXES = /^(?:จังหวัด|จ\.|อำเภอ|อ\.|เขต|ตำบล|ต\.|แขวง)\s*/;

  function fold(value) {
    return (value || "").normalize("NFC").replace(/[\u200B-\u200D\u2060\uFEFF]/g, "").trim()
      .replace(PREFIXES, "").replace(/\s+/g, "").toLowerCase();
  }

  async function loadAreas() {
    if (areas) return areas;
    const response = await fetch(root.dataset.areasUrl, { credentials: "same-origin" });
    areas = await response.json();
    return areas;
  }

  const chosen = { province: null, district: null, subdistrict: null };

  function optionsFor(level) {
    if (!areas) return [];
    if (level === "province") return areas;
    if (level === "district") return chosen.province ? chosen.province[3] : [];
    return chosen.district ? chosen.district[3] : [];
  }

  function label(item) {
    return english ? `${item[1]} (${item[2]})` : item[1];
  }

  function matches(level, typed) {
    const q = fold(typed);
    const all = optionsFor(level);
    if (!q) return all.slice(0, 80);
    const starts = [], contains = [];
    for (const item of all) {
      const th = fold(item[1]), en = fold(item[2]);
      if (th.startsWith(q) || en.startsWith(q)) starts.push(item);
      else if (th.includes(q) || en.includes(q)) contains.push(item);
    }
    return starts.concat(contains).slice(0, 80);
  }

  function showList(level) {
    const input = $(`f-${level}`);
    const list = $(`list-${level}`);
    const found = matches(level, input.value);
    list.replaceChildren(...found.map((item, i) => {
      const li = document.createElement("li");
      li.role = "option";
      li.id = `opt-${level}-${item[0]}`;
      li.dataset.code = item[0];
      li.textContent = label(item);
      if (i === 0) li.classList.add("active");
      li.addEventListener("mousedown", (event) => { event.preventDefault(); choose(level, item); });
      return li;
    }));
    if (!found.length) {
      const li = document.createElement("li");
      li.className = "none";
      li.textContent = text.no_match;
      list.replaceChildren(li);
    }
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }

  function hideList(level) {
    $(`list-${level}`).hidden = true;
    $(`f-${level}`).setAttribute("aria-expanded", "false");
  }

  function choose(level, item) {
    chosen[level] = item;
    $(`f-${level}`).value = item ? item[1] : "";
    $(`code-${level}`).value = item ? item[0] : "";
    hideList(level);
    clearError(level);
    const below = LEVELS.slice(LEVELS.indexOf(level) + 1);
    below.forEach((lower, i) => {
      chosen[lower] = null;
      $(`f-${lower}`).value = "";
      $(`code-${lower}`).value = "";
      $(`f-${lower}`).disabled = !(i === 0 && item);
    });
    if (item && below.length) $(`f-${below[0]}`).focus();
  }

  function moveActive(level, step) {
    const items = Array.from($(`list-${level}`).querySelectorAll("li[data-code]"));
    if (!items.length) return;
    let index = items.findIndex((li) => li.classList.contains("active"));
    items.forEach((li) => li.classList.remove("active"));
    index = Math.max(0, Math.min(items.length - 1, index + step));
    items[index].classList.add("active");
    items[index].scrollIntoView({ block: "nearest" });
    $(`f-${level}`).setAttribute("aria-activedescendant", items[index].id);
  }

  function pickActive(level) {
    const li = $(`list-${level}`).querySelector("li.active[data-code]");
    const item = li && optionsFor(level).find((x) => x[0] === li.dataset.code);
    if (item) choose(level, item);
  }

  function exactMatch(level) {
    const q = fold($(`f-${level}`).value);
    return q ? optionsFor(level).find((x) => fold(x[1]) === q || fold(x[2]) === q) : null;
  }

  LEVELS.forEach((level) => {
    const input = $(`f-${level}`);
    input.addEventListener("focus", async () => { await loadAreas(); showList(level); });
    input.addEventListener("input", async () => {
      await loadAreas();
      if (chosen[level] && input.value !== chosen[level][1]) {
        const typed = input.value;
        choose(level, null);
        input.value = typed;
      }
      showList(level);
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown") { event.preventDefault(); moveActive(level, 1); }
      else if (event.key === "ArrowUp") { event.preventDefault(); moveActive(level, -1); }
      else if (event.key === "Enter") { event.preventDefault(); pickActive(level); }
      else if (event.key === "Escape") hideList(level);
    });
    input.addEventListener("blur", () => {
      setTimeout(() => {
        hideList(level);
        if (!chosen[level]) {
          const exact = exactMatch(level);
          if (exact) choose(level, exact);
        }
      }, 150);
    });
  });

  // --- checks as one types ------------------------------------------------------------------

  function idDigits() { return $("f-national_id").value.replace(/[\s-]/g, ""); }

  function checkDigitOk(nid) {
    if (!/^\d{13}$/.test(nid)) return false;
    let total = 0;
    for (let i = 0; i < 12; i++) total += Number(nid[i]) * (13 - i);
    return (11 - (total % 11)) % 10 === Number(nid[12]);
  }

  function showIdStatus() {
    const nid = idDigits();
    const status = $("nid-status");
    status.className = "hint";
    if (!nid) { status.textContent = ""; return true; }
    if (!/^\d+$/.test(nid)) { status.textContent = text.nid_bad; status.classList.add("bad"); return false; }
    if (nid.length < 13) { status.textContent = text.nid_short.replace("{n}", nid.length); return false; }
    const ok = checkDigitOk(nid);
    status.textContent = ok ? text.nid_ok : text.nid_bad;
    status.classList.add(ok ? "good" : "bad");
    return ok;
  }

  $("f-national_id").addEventListener("input", () => { clearError("national_id"); showIdStatus(); });
  $("f-title").addEventListener("change", () => {
    const other = $("f-title-other");
    other.hidden = $("f-title").value !== "";
    if (!other.hidden) other.focus();
  });

  // --- errors beside their fields -----------------------------------------------------------

  // The control a field's message belongs to: marked invalid and described by the message.
  function control(name) {
    const el = $(`f-${name}`);
    return el && el.type !== "hidden" ? el : null;
  }

  function showError(name, message) {
    const slot = $(`err-${name}`) || $("form-error");
    slot.textContent = message;
    slot.hidden = false;
    const box = slot.closest("[data-field]");
    if (box) box.classList.add("invalid");
    const el = control(name);
    if (el && slot.id === `err-${name}`) {
      el.setAttribute("aria-invalid", "true");
      const described = (el.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
      if (!described.includes(slot.id)) el.setAttribute("aria-describedby", described.concat(slot.id).join(" "));
    }
  }

  function clearError(name) {
    const slot = $(`err-${name}`);
    if (!slot) return;
    slot.hidden = true;
    slot.textContent = "";
    const box = slot.closest("[data-field]");
    if (box) box.classList.remove("invalid");
    const el = control(name);
    if (el) el.removeAttribute("aria-invalid");
  }

  function clearErrors() {
    form.querySelectorAll(".field-error").forEach((slot) => clearError(slot.id.slice(4)));
    $("form-error").hidden = true;
  }

  form.addEventListener("input", (event) => {
    const box = event.target.closest("[data-field]");
    if (box && box.dataset.field !== "national_id") clearError(box.dataset.field);
  });

  function localProblems(fields) {
    const problems = {};
    if (!fields.first_name.trim()) problems.first_name = text.required;
    if (!fields.last_name.trim()) problems.last_name = text.required;
    if (!fields.province) problems.province = text.choose_from_list;
    if (!fields.district) problems.district = text.choose_from_list;
    if ($("f-subdistrict").value.trim() && !fields.subdistrict) problems.subdistrict = text.choose_from_list;
    const phone = fields.phone.replace(/[\s\-().]/g, "");
    if (!phone) problems.phone = text.required;
    else if (!/^(?:\+66|0)\d{8,9}$/.test(phone)) problems.phone = text.phone_bad;
    if (fields.national_id && !showIdStatus()) problems.national_id = text.nid_bad;
    if (!fields.pdpa) problems.pdpa = text.required;
    return problems;
  }

  function collect() {
    const choice = $("f-title").value;
    return {
      title: choice || $("f-title-other").value,
      first_name: $("f-first_name").value, last_name: $("f-last_name").value,
      role: $("f-role").value, position: $("f-position").value, organization: $("f-organization").value,
      province: $("code-province").value, district: $("code-district").value,
      subdistrict: $("code-subdistrict").value,
      phone: $("f-phone").value, national_id: idDigits(), pdpa: $("f-pdpa").checked ? "1" : "",
    };
  }

  // --- sending ------------------------------------------------------------------------------

  async function post(url, body) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), SEND_WAIT_MS);
    try {
      const response = await fetch(url, {
        method: "POST", credentials: "same-origin", signal: controller.signal,
        headers: { "Content-Type": "application/json", "Accept": "application/json",
                   "X-CSRFToken": root.dataset.csrf },
        body: JSON.stringify(body),
      });
      let json = null;
      try { json = await response.json(); } catch (e) { /* not JSON */ }
      return { status: response.status, json };
    } catch (e) {
      return { status: 0, json: null };  // unreachable, or no answer in time
    } finally {
      clearTimeout(timer);
    }
  }

  function unreachable(answer) {
    return answer.status === 0 || answer.status === 502 || answer.status === 503 || answer.status === 504;
  }

  async function send(extra) {
    if (sending) return;  // a double tap sends once; the key makes a resend harmless too
    clearErrors();
    const fields = collect();
    const problems = localProblems(fields);
    if (Object.keys(problems).length) {
      Object.entries(problems).forEach(([name, message]) => showError(name, message));
      focusFirstError();
      return;
    }
    sending = true;
    $("reg-send").disabled = true;
    const madeAt = new Date().toISOString();
    const body = { key, fields, made_at: madeAt, ...extra };
    try {
      const answer = await post(root.dataset.submitUrl, body);
      if (unreachable(answer)) {
        const kept = { ...body, ...Outbox.lastContact("register"), deferred: true };
        await Outbox.put({ key, kind: "registration", made_at: madeAt, body: kept });
        showStep("step-saved");
        updateQueueNote();
        return;
      }
      handle(answer);
    } finally {
      sending = false;
      $("reg-send").disabled = false;
    }
  }

  function handle({ status, json }) {
    Outbox.saveContact("register", json);
    if (json && json.ok) return showBadge(json);
    if (!json) return showError("form", text.server_error);
    if (json.reason === "invalid_form") {
      Object.entries(json.errors).forEach(([name, e]) => showError(name, e.message));
      return focusFirstError();
    }
    if (json.reason === "possible_duplicate" || json.reason === "national_id_taken") {
      return showMatches(json);
    }
    if (json.reason === "ask_at_desk" || json.reason === "tablet_paused") return showDesk(json.error);
    if (json.reason === "quota_full") return showStep("step-full", "full-title");
    showError("form", json.error || text.server_error);
  }

  function focusFirstError() {
    const first = form.querySelector(".invalid input:not([type=hidden]), .invalid select");
    if (first) first.focus();
  }

  // --- "already registered?" ---------------------------------------------------------------
  // The kiosk says only which of the typed facts match someone: their badge is at the desk.

  function showMatches(json) {
    const byId = json.reason === "national_id_taken";
    $("match-why").textContent = json.error;
    $("match-list").replaceChildren(...json.matches.map((kind) => {
      const li = document.createElement("li");
      li.textContent = text[`match_${kind}`] || kind;
      return li;
    }));
    $("match-new").hidden = byId;
    $("match-fix").hidden = !byId;
    showStep("step-match", "match-title");
  }

  function showDesk(message) {
    if (message) $("desk-why").textContent = message;
    showStep("step-desk", "desk-title");
  }

  $("match-desk").addEventListener("click", () => showDesk());
  $("match-new").addEventListener("click", () => { showStep("step-form"); send({ confirm_new: true }); });
  $("match-fix").addEventListener("click", () => {
    showStep("step-form");
    showError("national_id", text.nid_taken);
    $("f-national_id").focus();
  });
  $("match-back").addEventListener("click", () => showStep("step-form"));

  // --- the badge ----------------------------------------------------------------------------

  function drawQR(canvas, rows) {
    const quiet = 4;
    const n = rows.length + 2 * quiet;
    const scale = Math.max(4, Math.floor(360 / n));
    canvas.width = canvas.height = n * scale;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "#000";
    rows.forEach((row, r) => {
      for (let c = 0; c < row.length; c++) {
        if (row[c] === "1") ctx.fillRect((c + quiet) * scale, (r + quiet) * scale, scale, scale);
      }
    });
  }

  function showBadge(json) {
    const banner = $("done-banner");
    banner.textContent = json.replayed ? text.replayed : text[json.status] || text.created;
    banner.className = "done-banner " + json.status;
    const badge = json.badge;
    $("badge-screen").hidden = !badge;
    $("badge-hint").hidden = !badge;
    $("print-a6").hidden = $("print-a4").hidden = !badge;
    if (badge) {
      drawQR($("badge-qr"), badge.qr);
      $("badge-name").textContent = badge.full_name;
      $("badge-detail").textContent = [badge.role_name, badge.position, badge.organization, badge.area, badge.cohort]
        .filter(Boolean).join(" · ");
      $("badge-code").textContent = badge.display_code;
      $("print-a6").href = badge.pdf_url;
      $("print-a4").href = badge.pdf_url + "&paper=a4";
    } else {
      $("print-a6").removeAttribute("href");
      $("print-a4").removeAttribute("href");
    }
    showStep("step-done", "done-banner");
    announce(banner.textContent);
    if (json.checkin && json.checkin.status === "checked_in") showCheckedIn(json.checkin);
  }

  function announce(message) {
    const live = $("announce");
    live.textContent = "";
    setTimeout(() => { live.textContent = message; }, 50);  // a change screen readers notice
  }

  function showCheckedIn(result) {
    const screen = $("scan-result");
    screen.className = "scan-result ok";
    $("result-name").textContent = result.participant.name;
    $("result-detail").textContent = [result.participant.position, result.participant.area].filter(Boolean).join(" · ");
    $("result-time").textContent = `${text.cohort} ${result.session.cohort_number}`;
    screen.hidden = false;
    setTimeout(() => { screen.hidden = true; }, 3500);
  }

  $("scan-result").addEventListener("click", () => { $("scan-result").hidden = true; });
  ["print-a6", "print-a4"].forEach((id) => $(id).addEventListener("click", (event) => {
    event.preventDefault();  // opened here, so that forgetting the person closes it too
    printWindow = window.open($(id).href, "_blank");
  }));

  // --- steps, idle, forgetting --------------------------------------------------------------

  function showStep(id, focusId) {
    document.querySelectorAll(".step").forEach((step) => { step.hidden = step.id !== id; });
    window.scrollTo(0, 0);
    if (focusId) $(focusId).focus();
    touch();
  }

  function forget() {
    clearInterval(countdown);
    if (printWindow && !printWindow.closed) printWindow.close();
    form.reset();
    // A fresh page in place of this one: no history entry, nothing of this person kept in memory.
    window.location.replace(window.location.pathname);
  }

  // Something of a person is on the screen: a form begun, a badge, an answer about them.
  function started() {
    if (!$("step-full").hidden) return false;
    return !$("step-form").hidden ? Array.from(form.elements).some((el) =>
      (el.type === "checkbox" ? el.checked : el.tagName === "INPUT" && el.type !== "hidden" && el.value)) : true;
  }

  // After the idle time the tablet asks "still there?" and counts down before it forgets.
  const idleDialog = $("idle-dialog");
  let countdown = null;

  function touch() {
    if (idleDialog.open) return;  // only the dialog's own button (or Escape) answers it
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => { if (started()) askStillThere(); else touch(); },
                           Number(root.dataset.idle || 60) * 1000);
  }

  function askStillThere() {
    let left = Number(idleDialog.dataset.seconds || 30);
    const show = () => { $("idle-count").textContent = text.idle_count.replace("{n}", left); };
    show();
    idleDialog.showModal();
    $("idle-stay").focus();
    countdown = setInterval(() => {
      left -= 1;
      if (left <= 0) forget(); else show();
    }, 1000);
  }

  function stillHere() {
    clearInterval(countdown);
    if (idleDialog.open) idleDialog.close();
    touch();
  }

  $("idle-stay").addEventListener("click", stillHere);
  idleDialog.addEventListener("cancel", (event) => { event.preventDefault(); stillHere(); });
  ["pointerdown", "keydown", "input"].forEach((type) => document.addEventListener(type, touch, true));
  $("done-next").addEventListener("click", forget);
  $("saved-next").addEventListener("click", forget);
  $("desk-next").addEventListener("click", forget);
  // Coming back through the back/forward cache would show the previous person: reload instead.
  window.addEventListener("pageshow", (event) => { if (event.persisted) forget(); });

  form.addEventListener("submit", (event) => { event.preventDefault(); send({}); });

  // --- what waits on this tablet ------------------------------------------------------------

  async function updateQueueNote(message) {
    const note = $("queue-note");
    const n = await Outbox.count("registration").catch(() => 0);
    note.className = "queue-note" + (message === text.failed_later ? " bad" : "");
    note.textContent = n ? text.pending.replace("{n}", n) : (message || "");
    note.hidden = !note.textContent;
  }

  // Full or not, as the laptop says every minute: the tablet tells before anyone fills the form.
  function applyWalkIns(state) {
    const waiting = !$("step-full").hidden || (!$("step-form").hidden && !started());
    if (!state || !waiting) return;  // never under the hands of someone filling the form
    const refuse = state.full && state.mode === "refuse";
    $("full-note").hidden = !(state.full && state.mode === "waitlist");
    $("reg-send").textContent = $("reg-send").dataset[$("full-note").hidden ? "badge" : "wait"];
    if (refuse !== !$("step-full").hidden) showStep(refuse ? "step-full" : "step-form");
  }

  Outbox.keepInTouch("register", root.dataset.contactUrl, post, (json) => applyWalkIns(json.walk_ins));

  let refused = false;
  Outbox.keepFlushing("registration", (item) => post(root.dataset.submitUrl, item.body), (item, answer) => {
    Outbox.saveContact("register", answer.json);
    if (!(answer.json && answer.json.ok)) refused = true;
    updateQueueNote(refused ? text.failed_later : text.sent_later);
  });
  updateQueueNote();
  touch();
})();
