// School one-button alarms on the video wall: a pop-up per alarm with its linked cameras,
// an audible cue until someone acknowledges, and the acknowledge / close buttons.
// Plain browser JavaScript, no build step, self-contained (it brings its own styles).
//
// Hook-up, in the page that includes it:
//   <script src="alarms.js"></script>
//   sharpeyesAlarms.start({ showCameras: (ids) => { ...put these camera ids on the wall... } });
// showCameras is optional: without it the pop-up shows the snapshots taken at the alarm.
// Everything comes from GET /api/v1/events/stream (Server-Sent Events, filtered to the
// signed-in user's scope by the gateway) and GET /api/v1/alarms (what is open at load).
"use strict";

(() => {
  const API = "/api/v1";
  const TYPES = "emergency,tamper,test";
  const TITLE = { emergency: "紧急报警 EMERGENCY", tamper: "防拆报警 TAMPER", test: "测试 TEST" };
  const BEEP_EVERY_MS = 2000;

  const alarms = new Map(); // event id → the latest message about it
  let options = { showCameras: null };
  let panel = null;
  let audio = null;
  let beeper = null;

  const css = `
#alarm-panel{position:fixed;top:8px;right:8px;width:380px;max-height:96vh;overflow:auto;z-index:1000;
  font:14px/1.4 system-ui,sans-serif;display:flex;flex-direction:column;gap:8px}
.alarm{background:#2b0d0d;color:#fff;border:2px solid #e53935;border-radius:6px;padding:8px;
  box-shadow:0 4px 16px #0008}
.alarm.raised{animation:alarm-blink 1s step-end infinite}
.alarm.tamper{border-color:#ffb300;background:#2b220d}
.alarm.test{border-color:#42a5f5;background:#0d1d2b;animation:none}
.alarm.acknowledged{animation:none;opacity:.92}
.alarm h2{margin:0 0 4px;font-size:16px}
.alarm .meta{color:#ddd;font-size:12px}
.alarm .cams{display:grid;grid-template-columns:repeat(2,1fr);gap:4px;margin:6px 0}
.alarm .cams figure{margin:0;background:#000;min-height:60px}
.alarm .cams img{width:100%;display:block}
.alarm .cams figcaption{font-size:11px;color:#ccc;padding:2px}
.alarm button{margin-right:6px}
.alarm textarea{width:100%;box-sizing:border-box}
.alarm .error{color:#ff8a80}
#alarm-sound{background:#e53935;color:#fff;border:0;padding:6px;border-radius:4px;cursor:pointer}
@keyframes alarm-blink{50%{border-color:#fff}}`;

  function el(tag, props = {}, ...children) {
    const node = Object.assign(document.createElement(tag), props);
    node.append(...children);
    return node;
  }

  // --- sound: WebAudio, so no media file is needed ---------------------------------------

  function unlockAudio() {
    if (!audio) audio = new AudioContext();
    if (audio.state === "suspended") audio.resume();
    const hint = document.getElementById("alarm-sound");
    if (hint) hint.remove();
  }

  function tone(frequency, seconds) {
    if (!audio || audio.state !== "running") return;
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = frequency;
    gain.gain.setValueAtTime(0.25, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + seconds);
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + seconds);
  }

  function updateSound() {
    // A real alarm sounds until someone acknowledges it; a drill chimes once on arrival.
    const ringing = [...alarms.values()].some((m) => m.data.state === "raised" && !m.data.test);
    if (ringing && !beeper) {
      const ring = () => { tone(880, 0.25); setTimeout(() => tone(660, 0.25), 300); };
      ring();
      beeper = setInterval(ring, BEEP_EVERY_MS);
    } else if (!ringing && beeper) {
      clearInterval(beeper);
      beeper = null;
    }
    if (ringing && (!audio || audio.state !== "running") && !document.getElementById("alarm-sound")) {
      // Browsers play sound only after the user interacted with the page.
      panel.prepend(el("button", { id: "alarm-sound", textContent: "🔊 点击开启报警声音 click to enable the alarm sound",
        onclick: unlockAudio }));
    }
  }

  // --- actions ---------------------------------------------------------------------------

  async function post(path, body) {
    const response = await fetch(API + path, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (!response.ok) {
      let message = response.statusText;
      try { message = (await response.json()).message || message; } catch (_) { /* keep */ }
      throw new Error(message);
    }
    return response.json();
  }

  function act(card, work) {
    const error = card.querySelector(".error");
    error.textContent = "";
    work().then((alarm) => receive(asMessage(alarm))).catch((e) => { error.textContent = e.message; });
  }

  // --- rendering -------------------------------------------------------------------------

  function when(epoch) {
    return new Date(epoch * 1000).toLocaleString();
  }

  function cameraFigure(camera, linkage) {
    const link = (linkage || []).find((entry) => entry.camera === camera.id);
    const figure = el("figure", {}, el("figcaption", { textContent: camera.name }));
    if (link && link.snapshot) figure.prepend(el("img", { src: link.snapshot, alt: camera.name }));
    return figure;
  }

  function render(message) {
    const id = message.data.event_id;
    const d = message.data;
    let card = document.getElementById(`alarm-${id}`);
    if (d.state === "closed") { if (card) card.remove(); return; }
    const fresh = !card;
    if (fresh) card = el("section", { id: `alarm-${id}` });
    card.className = `alarm ${message.type} ${d.state}${d.test ? " test" : ""}`;
    const cameras = d.cameras || [];
    const actions = el("div");
    if (d.state === "raised") {
      actions.append(el("button", { textContent: "确认 Acknowledge",
        onclick: () => act(card, () => post(`/alarms/${id}/ack`, {})) }));
    } else {
      const note = el("textarea", { rows: 2, placeholder: "处置情况 disposition (required)" });
      actions.append(note, el("button", { textContent: "结束 Close",
        onclick: () => act(card, () => post(`/alarms/${id}/close`, { disposition: note.value })) }));
    }
    if (options.showCameras && cameras.length) {
      actions.append(el("button", { textContent: "上墙 Show on wall",
        onclick: () => options.showCameras(cameras.map((c) => c.id)) }));
    }
    card.replaceChildren(
      el("h2", { textContent: `${d.test ? "【测试 TEST】" : ""}${TITLE[message.type] || message.type}` }),
      el("div", { textContent: `${d.school} · ${d.location || d.device_name}` }),
      el("div", { className: "meta", textContent:
        `${when(message.start)} · ${message.device}${d.phones && d.phones.length ? " · ☎ " + d.phones.join(", ") : ""}` +
        (d.cancelled_at ? " · 现场已取消 cancelled at the box" : "") +
        (d.acknowledged_by ? ` · 已确认 ack: ${d.acknowledged_by}` : "") }),
      el("div", { className: "cams" }, ...cameras.map((c) => cameraFigure(c, d.linkage))),
      actions,
      el("div", { className: "error" }),
    );
    if (fresh) panel.prepend(card);
    if (fresh && d.state === "raised" && options.showCameras && cameras.length && !d.test) {
      options.showCameras(cameras.map((c) => c.id));
    }
    if (fresh && d.test) tone(1320, 0.3);
  }

  function receive(message) {
    const id = message.data && message.data.event_id;
    if (!id) return;
    const known = alarms.get(id);
    if (known && known.data.version > message.data.version) return; // a replayed older state
    if (message.data.state === "closed") alarms.delete(id); else alarms.set(id, message);
    render(message);
    updateSound();
  }

  // An alarm from GET /api/v1/alarms as the stream would carry it.
  function asMessage(alarm) {
    return { type: alarm.type, device: alarm.device, start: Date.parse(alarm.start) / 1000,
      data: { ...alarm.data, event_id: alarm.id, version: alarm.version } };
  }

  async function start(given = {}) {
    options = { ...options, ...given };
    document.head.append(el("style", { textContent: css }));
    panel = el("div", { id: "alarm-panel", "aria-live": "assertive" });
    document.body.append(panel);
    document.addEventListener("click", unlockAudio, { once: true });
    try {
      const response = await fetch(`${API}/alarms`, { cache: "no-store" });
      if (response.ok) (await response.json()).forEach((alarm) => receive(asMessage(alarm)));
    } catch (_) { /* the stream below still brings new alarms */ }
    // EventSource reconnects by itself, sending Last-Event-ID: nothing is missed.
    const source = new EventSource(`${API}/events/stream?type=${TYPES}`);
    source.onmessage = (event) => receive(JSON.parse(event.data));
  }

  window.sharpeyesAlarms = { start };
})();
