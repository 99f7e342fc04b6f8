// Work the kiosk could not be reached for, kept on this tablet (IndexedDB) until it is sent.
//
// Each item has its idempotency key (a registration's submission key, a scan's nonce), the time
// it was made, the laptop's signed stamp of the page's last contact with it (see keepInTouch) and
// the JSON body to send. `flush` sends the waiting items of one kind in the
// order they were made and drops each one the kiosk answered for good (accepted, or refused for
// a reason a resend cannot change); the server de-duplicates by key, so a resend is harmless.
(function () {
  "use strict";

  const NAME = "kiosk-outbox";
  const STORE = "items";
  let opening = null;

  function open() {
    if (!opening) {
      opening = new Promise((resolve, reject) => {
        const request = indexedDB.open(NAME, 1);
        request.onupgradeneeded = () => {
          const store = request.result.createObjectStore(STORE, { keyPath: "key" });
          store.createIndex("kind", "kind");
        };
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
    }
    return opening;
  }

  async function run(mode, work) {
    const db = await open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const result = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
      tx.onerror = () => reject(tx.error);
    });
  }

  function uid() {
    // crypto.randomUUID needs a secure context; a LAN kiosk may be plain http.
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // An answer that a resend cannot change: the item is done, whatever it says.
  function settled(status, json) {
    if (!status || status >= 500 || status === 401 || status === 408 || status === 429) return false;
    return !(json && json.reason === "csrf");
  }

  const sending = {};

  // The laptop's signed time of this page's last contact, and when this device received it on its
  // own clock: a kept item sends both, so the laptop counts its time from its own clock.
  const CONTACT_EVERY_MS = 60000;

  function saveContact(scope, answer) {
    if (!answer || !answer.contact) return;
    try {
      localStorage.setItem(`kiosk-contact-${scope}`,
                           JSON.stringify({ contact: answer.contact, contact_seen_at: new Date().toISOString() }));
    } catch (e) { /* storage full or disabled: the laptop then takes its own time */ }
  }

  function lastContact(scope) {
    try {
      return JSON.parse(localStorage.getItem(`kiosk-contact-${scope}`)) || {};
    } catch (e) {
      return {};
    }
  }

  const Outbox = {
    uid,
    settled,
    put(item) { return run("readwrite", (store) => store.put(item)); },
    remove(key) { return run("readwrite", (store) => store.delete(key)); },
    async list(kind) {
      const items = await run("readonly", (store) => store.index("kind").getAll(kind));
      return (items || []).sort((a, b) => (a.made_at < b.made_at ? -1 : 1));
    },
    async count(kind) { return (await Outbox.list(kind)).length; },
    // send(item) -> {status, json}; done(item, answer) after each settled item.
    async flush(kind, send, done) {
      if (sending[kind]) return;
      sending[kind] = true;
      try {
        for (const item of await Outbox.list(kind)) {
          const answer = await send(item);
          if (!settled(answer.status, answer.json)) break;  // still unreachable: try again later
          await Outbox.remove(item.key);
          if (done) done(item, answer);
        }
      } finally {
        sending[kind] = false;
      }
    },
    saveContact,
    lastContact,
    // Reach the laptop now, when the browser is online again, and every minute; keep its stamp.
    // post(url) -> {status, json}; heard(json) gets each answer.
    keepInTouch(scope, url, post, heard) {
      const go = async () => {
        const answer = await post(url, {});
        if (answer.json && answer.json.ok) {
          saveContact(scope, answer.json);
          if (heard) heard(answer.json);
        }
      };
      window.addEventListener("online", go);
      setInterval(go, CONTACT_EVERY_MS);
      go();
    },
    // Flush now, when the browser says it is online again, and every few seconds.
    keepFlushing(kind, send, done, every) {
      const go = () => Outbox.flush(kind, send, done).catch(() => {});
      window.addEventListener("online", go);
      setInterval(go, every || 4000);
      go();
    },
  };

  window.KioskOutbox = Outbox;

  // Pages that work without the laptop: the service worker serves them from its cache. Each page
  // asks it to keep a copy if it has none yet (the very first load went past it), so one load is
  // enough.
  if ("serviceWorker" in navigator && window.isSecureContext) {
    navigator.serviceWorker.register("/sw.js", { scope: "/" })
      .then(() => navigator.serviceWorker.ready)
      .then((registration) => {
        if (registration.active) registration.active.postMessage({ keep: window.location.pathname });
      })
      .catch(() => {});
  }
})();
