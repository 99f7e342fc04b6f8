// The tablets' service worker: the registration page and the scan page keep opening when the
// laptop's Wi-Fi drops. Pages are fetched from the network first (fresh sessions, fresh CSRF
// token) and from the cache only when the laptop does not answer; assets come from the cache.
// Answers with personal data (APIs, badges) are never cached.
"use strict";

const CACHE = "kiosk-tablet-v2";
const PAGES = ["/register", "/scan"];
const ASSETS = [
  "/static/css/kiosk.css", "/static/css/register.css", "/static/css/scan.css",
  "/static/js/outbox.js", "/static/js/register.js", "/static/js/scan.js", "/static/js/camera.js",
  "/static/sounds/ok.wav", "/static/sounds/repeat.wav", "/static/sounds/error.wav",
  "/fonts/Sarabun-Regular.ttf", "/fonts/Sarabun-Bold.ttf", "/register/areas.json",
];
const NETWORK_WAIT_MS = 4000;

async function remember(cache, key, response) {
  if (response.ok && !response.redirected && response.type === "basic") {
    await cache.put(key, response.clone());
  }
  return response;
}

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // Pages are not fetched here: a page fetched beside the user's own navigation would answer with
    // the session cookie as it was before that navigation (a language just chosen, lost again).
    // Each page is kept once it has loaded (see "keep").
    await Promise.all(ASSETS.map(async (path) => {
      try {
        await remember(cache, path, await fetch(path, { credentials: "same-origin" }));
      } catch (e) { /* not reachable now: cached on first use */ }
    }));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

// A page asks to be kept when it has loaded: if this worker has no copy yet (it did not serve that
// load), one is fetched now, after the page's own navigation has set the session cookie (language,
// CSRF token) it will be served with offline.
async function keep(path) {
  const cache = await caches.open(CACHE);
  if (await cache.match(path)) return;
  try {
    await remember(cache, path, await fetch(path, { credentials: "same-origin" }));
  } catch (e) { /* the laptop went away already: the next load keeps it */ }
}

self.addEventListener("message", (event) => {
  const path = event.data && event.data.keep;
  if (PAGES.includes(path)) event.waitUntil(keep(path));
});

function withTimeout(promise, ms) {
  return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), ms))]);
}

async function page(request, key) {
  const cache = await caches.open(CACHE);
  try {
    return await remember(cache, key, await withTimeout(fetch(request), NETWORK_WAIT_MS));
  } catch (e) {
    const cached = await cache.match(key);
    if (cached) return cached;
    throw e;
  }
}

async function asset(request, key) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(key);
  const fresh = fetch(request).then((response) => remember(cache, key, response)).catch(() => null);
  return cached || (await fresh) || Response.error();
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && PAGES.includes(url.pathname)) {
    event.respondWith(page(request, url.pathname));
  } else if (ASSETS.includes(url.pathname)) {
    event.respondWith(asset(request, url.pathname));
  }
});
