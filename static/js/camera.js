// Camera scanning on tablets and phones. Chrome on Android decodes in the browser with
// BarcodeDetector; elsewhere (iOS Safari) a frame goes to the kiosk, which decodes it with
// zxing-cpp. Browsers open the camera only on a secure page: `kiosk serve --https`.
// A decoded code is handed to the scan page as a "kiosk:code" event, like a scanner's Enter.
(function () {
  "use strict";

  const button = document.getElementById("camera-toggle");
  const panel = document.getElementById("camera-panel");
  const video = document.getElementById("camera-video");
  const note = document.getElementById("camera-note");
  if (!button || !panel || !video) return;
  const decodeUrl = button.dataset.decodeUrl;
  const text = JSON.parse(document.getElementById("camera-text").textContent);
  const SAME_CODE_MS = 2500;  // a badge held up to the camera is seen many times a second
  let stream = null;
  let timer = null;
  let detector = null;
  let busy = false;
  let last = { code: "", at: 0 };

  function say(message) {
    note.textContent = message;
    note.hidden = !message;
  }

  async function start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say(text.needs_https);
      panel.hidden = false;
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    } catch (error) {
      say(text.denied);
      panel.hidden = false;
      return;
    }
    video.srcObject = stream;
    await video.play();
    if ("BarcodeDetector" in window) {
      try { detector = new window.BarcodeDetector({ formats: ["qr_code"] }); } catch (e) { detector = null; }
    }
    panel.hidden = false;
    button.setAttribute("aria-pressed", "true");
    say(detector ? "" : text.server_decoding);
    timer = setInterval(look, detector ? 150 : 450);
  }

  function stop() {
    clearInterval(timer);
    timer = null;
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    panel.hidden = true;
    button.setAttribute("aria-pressed", "false");
  }

  async function look() {
    if (busy || video.readyState < 2) return;
    busy = true;
    try {
      const codes = detector ? (await detector.detect(video)).map((b) => b.rawValue) : await askServer();
      codes.forEach(found);
    } catch (error) {
      /* a frame that fails is skipped; the next one comes in a moment */
    } finally {
      busy = false;
    }
  }

  async function askServer() {
    const canvas = document.createElement("canvas");
    const scale = Math.min(1, 960 / Math.max(video.videoWidth, video.videoHeight));
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.8));
    const response = await fetch(decodeUrl, { method: "POST", body: blob, credentials: "same-origin",
                                              headers: { "Content-Type": "image/jpeg" } });
    const json = await response.json();
    return json.ok ? json.codes : [];
  }

  function found(code) {
    const now = Date.now();
    if (code === last.code && now - last.at < SAME_CODE_MS) return;
    last = { code, at: now };
    document.dispatchEvent(new CustomEvent("kiosk:code", { detail: code }));
  }

  button.addEventListener("click", () => (stream ? stop() : start()));
  document.addEventListener("visibilitychange", () => { if (document.hidden && stream) stop(); });
})();
