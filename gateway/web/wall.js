// The operators' video wall: camera tree by region, a 1/4/9/16 split wall, WHEP playback,
// and recorded footage of the selected tile on a timeline (played from the MP4 segments).
// Plain browser JavaScript, no build step: the gateway serves this file as it is.
"use strict";

const API = "/api/v1";
const REFRESH_MS = 10000; // catalog and status refresh
const STALL_MS = 6000; // no new decoded frame for this long: the tile reconnects
const RETRY_MS = [1000, 2000, 5000, 10000, 20000]; // reconnect back-off
const STATE_TEXT = { online: "在线 online", connecting: "连接中 connecting", offline: "离线 offline",
  idle: "空闲 idle" };

const wall = {
  split: 4,
  tiles: [],
  cameras: new Map(), // id → camera (from /api/v1/cameras)
  regions: [],
  selected: 0,
  hours: 24, // timeline zoom
};

// --- WHEP (RFC 9725) ----------------------------------------------------------------------

class WhepError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function iceGatheringDone(pc, timeoutMs) {
  // Non-trickle WHEP: the offer carries the browser's candidates, so wait for them (bounded:
  // a host with many interfaces can take long, and the gateway answers checks anyway).
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") finish(); };
    const finish = () => { pc.removeEventListener("icegatheringstatechange", done); resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(finish, timeoutMs);
  });
}

async function whepPlay(url, video) {
  const pc = new RTCPeerConnection({ iceServers: [] });
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.ontrack = (event) => { video.srcObject = new MediaStream([event.track]); };
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringDone(pc, 1500);
    const response = await fetch(url, {
      method: "POST", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp,
    });
    if (response.status !== 201) {
      let body = {};
      try { body = await response.json(); } catch (_) { /* not JSON: keep the status */ }
      throw new WhepError(response.status, body.code || "", body.message || response.statusText);
    }
    const location = new URL(response.headers.get("Location"), url).href;
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    return { pc, location };
  } catch (error) {
    pc.close();
    throw error;
  }
}

function whepStop(session) {
  session.pc.close();
  // keepalive: the DELETE still goes out while the page unloads
  fetch(session.location, { method: "DELETE", keepalive: true }).catch(() => {});
}

// --- tiles --------------------------------------------------------------------------------

class Tile {
  constructor(index) {
    this.index = index;
    this.camera = null;
    this.session = null;
    this.attempt = 0;
    this.timer = null;
    this.lastFrames = 0;
    this.lastProgress = 0;
    this.el = document.createElement("div");
    this.el.className = "tile";
    this.el.dataset.index = index;
    this.playback = null; // { start, end } wall-clock seconds of the segment playing, or null: live
    this.el.innerHTML = '<div class="empty">空 empty</div><img alt=""><video muted autoplay playsinline></video>' +
      '<div class="label"></div><div class="mode"></div><div class="status"></div>';
    this.video = this.el.querySelector("video");
    this.img = this.el.querySelector("img");
    this.label = this.el.querySelector(".label");
    this.status = this.el.querySelector(".status");
    this.mode = this.el.querySelector(".mode");
    this.video.addEventListener("playing", () => this.el.classList.add("playing"));
    this.video.addEventListener("timeupdate", () => { if (this.playback) showClock(this); });
    // A segment is a few seconds to a minute of footage: carry on where this one ended.
    this.video.addEventListener("ended", () => { if (this.playback) this.playFrom(this.playback.end, true); });
    this.img.addEventListener("error", () => { this.img.removeAttribute("src"); });
    this.el.addEventListener("click", () => selectTile(this.index));
    this.el.addEventListener("dblclick", () => toggleEnlarged(this));
  }

  get stream() {
    // Small tiles use the sub stream where the camera has one: less to decode, same picture.
    const hasSub = this.camera && this.camera.source && this.camera.source.sub_url;
    return wall.split >= 9 && hasSub ? "sub" : "main";
  }

  decodedFrames() {
    const quality = this.video.getVideoPlaybackQuality && this.video.getVideoPlaybackQuality();
    return quality ? quality.totalVideoFrames : 0;
  }

  assign(camera) {
    this.stop();
    this.camera = camera;
    this.attempt = 0;
    this.el.querySelector(".empty").style.display = camera ? "none" : "";
    this.render();
    if (camera) this.start();
  }

  render() {
    const camera = this.camera;
    if (!camera) { this.label.textContent = ""; this.setStatus(""); return; }
    this.el.dataset.camera = camera.id;
    this.label.innerHTML = "";
    this.label.append(dot(camera.status.state), badge(camera), text(camera.name));
    if (!this.session && camera.status.state === "offline") this.setStatus(offlineText(camera), true);
  }

  setStatus(message, isError = false) {
    this.status.textContent = message;
    this.status.classList.toggle("error", isError);
  }

  async start() {
    const camera = this.camera;
    clearTimeout(this.timer);
    this.stopPlayback();
    this.img.src = `${API}/cameras/${camera.id}/snapshot.jpg?stream=${this.stream}&t=${Date.now()}`;
    this.setStatus(camera.status.state === "offline" ? offlineText(camera) : "连接中 connecting…",
      camera.status.state === "offline");
    const url = new URL(`${API}/cameras/${camera.id}/whep?stream=${this.stream}`, location.href).href;
    let session;
    try {
      session = await whepPlay(url, this.video);
    } catch (error) {
      if (this.camera !== camera) return; // reassigned meanwhile
      if (error instanceof WhepError && error.status === 401) { signIn(); return; }
      // 403/404: not this user's camera; 4xx: the offer or the stream will not change by
      // itself. 429 (too many live views), 503 (offline, limits), network errors: retry.
      const permanent = error instanceof WhepError && [400, 403, 404, 415, 422].includes(error.status);
      this.setStatus(error.message || String(error), true);
      this.el.dataset.error = error.code || "error";
      if (!permanent) this.retry();
      return;
    }
    if (this.camera !== camera || this.playback) { whepStop(session); return; } // or now playing footage
    this.session = session;
    delete this.el.dataset.error;
    this.lastFrames = 0;
    this.lastProgress = performance.now();
    session.pc.addEventListener("connectionstatechange", () => {
      const state = session.pc.connectionState;
      if (state === "connected") { this.attempt = 0; this.setStatus(""); }
      if (state === "failed" || state === "closed") this.reconnect("连接中断 connection lost");
    });
  }

  // Called every second: a stream that stops producing pictures is reconnected.
  watch() {
    if (!this.session) return;
    const frames = this.decodedFrames();
    const now = performance.now();
    if (frames > this.lastFrames) { this.lastFrames = frames; this.lastProgress = now; return; }
    if (now - this.lastProgress > STALL_MS) this.reconnect("画面中断 stream stalled");
  }

  reconnect(why) {
    if (!this.session) return;
    this.stopSession();
    this.el.classList.remove("playing");
    this.setStatus(`${why} — 重连 reconnecting…`, true);
    this.retry();
  }

  retry() {
    const delay = RETRY_MS[Math.min(this.attempt, RETRY_MS.length - 1)];
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { if (this.camera && !this.session) this.start(); }, delay);
  }

  // Recorded footage from wall-clock time t, one segment file after the other: Chromium plays
  // the recorder's MP4 segments itself (HLS would need hls.js), and they are what the
  // playback right covers — export.mp4 is the evidence export, a right of its own that
  // operators do not have, audited as an export. `next`: the previous segment ended.
  async playFrom(t, next = false) {
    const camera = this.camera;
    const token = (this.token = {}); // a later click wins over a slower earlier request
    if (!next) this.setStatus("加载录像 loading recording…");
    let segment;
    try {
      const body = await getJson(`/cameras/${camera.id}/recordings?start=${t.toFixed(3)}`);
      // The segment holding t, or the first one recorded after it (a click in a gap).
      segment = body.segments.find((s) => Date.parse(s.end) / 1000 > t);
    } catch (error) {
      if (this.token === token) this.setStatus(`录像 recording: ${error.message}`, true);
      return;
    }
    if (this.token !== token || this.camera !== camera) return;
    if (!segment) {
      if (next) {
        // At the end of what is saved so far: the segment being written is indexed when it
        // closes, so look again rather than give up.
        this.setStatus("录像末尾 end of recording — 等待 waiting for more…");
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.playFrom(t, true), 5000);
      } else {
        this.setStatus("此后无录像 nothing recorded after this point", true);
      }
      return;
    }
    // Only now leave live: a click where nothing is recorded keeps the picture the operator had.
    clearTimeout(this.timer);
    this.stopSession();
    // A segment's media time starts at 0 at its wall-clock start.
    const start = Date.parse(segment.start) / 1000;
    this.playback = { start, end: Date.parse(segment.end) / 1000 };
    this.el.classList.add("recorded");
    this.setStatus("");
    this.video.src = segment.url + (t > start ? `#t=${(t - start).toFixed(3)}` : "");
    showClock(this);
  }

  goLive() {
    if (!this.camera) return;
    this.stopPlayback();
    this.start();
  }

  stopPlayback() {
    if (!this.playback) return;
    this.playback = null;
    this.token = null;
    this.el.classList.remove("recorded");
    this.video.removeAttribute("src");
    this.video.load(); // drops the buffered segment
    showClock(this);
  }

  stopSession() {
    if (this.session) { whepStop(this.session); this.session = null; }
    this.video.srcObject = null;
  }

  stop() {
    clearTimeout(this.timer);
    this.stopPlayback();
    this.stopSession();
    this.el.classList.remove("playing");
    this.img.removeAttribute("src");
    delete this.el.dataset.camera;
    delete this.el.dataset.error;
  }
}

function offlineText(camera) {
  const s = camera.status;
  return `离线 offline: ${s.reason || "unknown"}${s.message ? " — " + s.message : ""}`;
}

function selectTile(index) {
  const changed = wall.selected !== index;
  wall.selected = index;
  wall.tiles.forEach((t) => t.el.classList.toggle("selected", t.index === index));
  if (changed || !timeline.camera) loadTimeline();
}

function toggleEnlarged(tile) {
  const grid = document.getElementById("wall");
  const enlarged = !tile.el.classList.contains("big");
  wall.tiles.forEach((t) => t.el.classList.remove("big"));
  tile.el.classList.toggle("big", enlarged);
  grid.classList.toggle("enlarged", enlarged);
}

function setSplit(split) {
  const previous = wall.tiles.map((t) => t.camera);
  wall.tiles.forEach((t) => t.stop());
  wall.split = split;
  const grid = document.getElementById("wall");
  const side = Math.sqrt(split);
  grid.className = "";
  grid.style.gridTemplateColumns = `repeat(${side}, 1fr)`;
  grid.style.gridTemplateRows = `repeat(${side}, 1fr)`;
  grid.innerHTML = "";
  wall.tiles = Array.from({ length: split }, (_, i) => new Tile(i));
  wall.tiles.forEach((t) => grid.append(t.el));
  document.querySelectorAll("[data-split]").forEach((b) =>
    b.classList.toggle("active", Number(b.dataset.split) === split));
  previous.slice(0, split).forEach((camera, i) => wall.tiles[i].assign(camera));
  selectTile(Math.min(wall.selected, split - 1));
  save();
}

function showCamera(camera) {
  const tile = wall.tiles[wall.selected];
  tile.assign(camera);
  loadTimeline(); // in case the selection does not move (a 1-tile wall)
  selectTile((wall.selected + 1) % wall.tiles.length);
  save();
}

function save() {
  localStorage.setItem("wall", JSON.stringify({
    split: wall.split, cameras: wall.tiles.map((t) => (t.camera ? t.camera.id : null)),
  }));
}

// --- recorded footage: the selected tile's timeline ----------------------------------------

const timeline = { camera: null, from: 0, to: 0 };

function clockText(t) {
  const d = new Date(t * 1000);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// Playback or live, in the tile and (for the selected tile) in the panel: footage is evidence,
// an operator must never take a recording for the live picture.
function showClock(tile) {
  const t = tile.playback ? tile.playback.start + tile.video.currentTime : null;
  tile.mode.textContent = t === null ? "" : `回放 PLAYBACK ${clockText(t)}`;
  if (tile.index !== wall.selected) return;
  const clock = document.getElementById("pb-clock");
  clock.textContent = t === null ? (tile.camera ? "直播 LIVE" : "") : `回放 PLAYBACK ${clockText(t)}`;
  clock.classList.toggle("recorded", t !== null);
  if (t === null) delete clock.dataset.time; else clock.dataset.time = t.toFixed(3);
  const cursor = document.getElementById("tl-cursor");
  cursor.hidden = t === null || t < timeline.from;
  if (!cursor.hidden) cursor.style.left = `${position(t)}%`;
}

function position(t) {
  return Math.min(100, Math.max(0, (100 * (t - timeline.from)) / (timeline.to - timeline.from)));
}

function bar(className, start, end, title) {
  const el = document.createElement("div");
  el.className = className;
  el.style.left = `${position(start)}%`;
  el.style.width = `${position(end) - position(start)}%`;
  el.title = title;
  el.dataset.start = start;
  el.dataset.end = end;
  return el;
}

// Segments end to end (each a few seconds or a minute) drawn as one span each would be
// thousands of elements over 24 h: merge the touching ones.
function mergeSegments(segments) {
  const spans = [];
  for (const s of segments) {
    const start = Date.parse(s.start) / 1000, end = Date.parse(s.end) / 1000;
    const last = spans[spans.length - 1];
    if (last && start - last.end < 1) last.end = Math.max(last.end, end);
    else spans.push({ start, end });
  }
  return spans;
}

async function loadTimeline() {
  const tile = wall.tiles[wall.selected];
  const camera = tile && tile.camera;
  timeline.camera = camera;
  document.getElementById("pb-camera").textContent = camera ? camera.name : "选择一个画面 select a tile";
  document.getElementById("pb-live").disabled = !camera;
  const track = document.getElementById("tl-track");
  if (!camera) { track.replaceChildren(); showClock(tile); return; }
  const to = Date.now() / 1000, from = to - wall.hours * 3600;
  let body;
  try {
    body = await getJson(`/cameras/${camera.id}/recordings?start=${from.toFixed(3)}&end=${to.toFixed(3)}`);
  } catch (error) {
    if (timeline.camera === camera) document.getElementById("pb-camera").textContent += ` — ${error.message}`;
    return;
  }
  if (timeline.camera !== camera) return; // another tile was selected meanwhile
  Object.assign(timeline, { from, to });
  const range = (a, b) => `${clockText(a)} – ${clockText(b)}`;
  const bars = mergeSegments(body.segments).map((s) => bar("span", s.start, s.end, `录像 recorded ${range(s.start, s.end)}`));
  const open = body.recording && body.recording.segment_start;
  if (open) {
    const start = Date.parse(open) / 1000;
    bars.push(bar("span open", start, to, `录制中 being recorded since ${clockText(start)} (playable once saved)`));
  }
  for (const g of body.gaps) {
    const start = Date.parse(g.start) / 1000, end = g.end ? Date.parse(g.end) / 1000 : to;
    const el = bar("gap", start, end, `缺失 gap: ${g.reason} ${range(start, end)}`);
    el.dataset.reason = g.reason;
    bars.push(el);
  }
  for (const h of body.holds) {
    const start = Date.parse(h.start) / 1000, end = Date.parse(h.end) / 1000;
    bars.push(bar("hold", start, end, `保全 hold: ${h.reason} ${range(start, end)}`));
  }
  const step = (wall.hours * 3600) / 6;
  for (let t = Math.ceil(from / step) * step; t < to; t += step) {
    const tick = document.createElement("span");
    tick.className = "tick";
    tick.style.left = `${position(t)}%`;
    tick.textContent = clockText(t).slice(11, 16);
    bars.push(tick);
  }
  track.replaceChildren(...bars);
  document.querySelectorAll("[data-zoom]").forEach((b) =>
    b.classList.toggle("active", Number(b.dataset.zoom) === wall.hours));
  showClock(tile);
}

function timelineClick(event) {
  const tile = wall.tiles[wall.selected];
  if (!tile.camera || tile.camera !== timeline.camera) return;
  const box = event.currentTarget.getBoundingClientRect();
  tile.playFrom(timeline.from + ((event.clientX - box.left) / box.width) * (timeline.to - timeline.from));
}

// --- camera tree --------------------------------------------------------------------------

function dot(state) {
  const el = document.createElement("span");
  el.className = `dot ${state}`;
  el.title = STATE_TEXT[state] || state;
  return el;
}

function badge(camera) {
  const el = document.createElement("span");
  el.className = `badge ${camera.class}`;
  el.textContent = camera.class_label || camera.class;
  el.title = `class ${camera.class}`;
  return el;
}

function text(value, className = "name") {
  const el = document.createElement("span");
  el.className = className;
  el.textContent = value;
  return el;
}

function cameraRow(camera) {
  const row = document.createElement("div");
  row.className = "camera";
  row.dataset.camera = camera.id;
  row.title = `${camera.id} · ${camera.owner_unit}`;
  row.append(dot(camera.status.state), badge(camera), text(camera.name));
  if (camera.status.state === "offline") row.append(text(camera.status.reason, "why"));
  const health = document.createElement("a");
  health.className = "health";
  health.href = `health.html?camera=${encodeURIComponent(camera.id)}`;
  health.target = "_blank";
  health.title = "picture health over the last 24 h";
  health.textContent = "健康";
  health.addEventListener("click", (event) => event.stopPropagation());
  row.append(health);
  row.addEventListener("click", () => showCamera(camera));
  return row;
}

// An alarm's linked cameras take the first tiles, in their order (alarms.js calls this).
function showLinkedCameras(ids) {
  const cameras = ids.map((id) => wall.cameras.get(id)).filter(Boolean);
  if (cameras.length > wall.split) setSplit(cameras.length <= 4 ? 4 : cameras.length <= 9 ? 9 : 16);
  cameras.slice(0, wall.tiles.length).forEach((camera, i) => wall.tiles[i].assign(camera));
  save();
}

function regionNode(region, byRegion, filter) {
  const cameras = (byRegion.get(region.code) || []).filter(filter);
  const children = region.children.map((c) => regionNode(c, byRegion, filter)).filter(Boolean);
  if (!cameras.length && !children.length) return null;
  const node = document.createElement("details");
  node.open = true;
  node.dataset.region = region.code;
  const summary = document.createElement("summary");
  summary.append(text(region.name), text(`${region.online}/${region.cameras}`, "count"));
  node.append(summary, ...cameras.map(cameraRow), ...children);
  return node;
}

function renderTree() {
  const query = document.getElementById("filter").value.trim().toLowerCase();
  const filter = (c) => !query || c.name.toLowerCase().includes(query) || c.id.includes(query);
  const byRegion = new Map();
  for (const camera of wall.cameras.values()) {
    if (!byRegion.has(camera.region)) byRegion.set(camera.region, []);
    byRegion.get(camera.region).push(camera);
  }
  const tree = document.getElementById("tree");
  const nodes = wall.regions.map((r) => regionNode(r, byRegion, filter)).filter(Boolean);
  tree.replaceChildren(...nodes);
  if (!nodes.length) tree.innerHTML = '<p class="hint">没有摄像机 no cameras</p>';
  const all = [...wall.cameras.values()];
  const online = all.filter((c) => c.status.state === "online").length;
  document.getElementById("summary").textContent = `${online} / ${all.length} 在线 online`;
}

function signIn() {
  // The wall's data needs a login (a session cookie); come back here afterwards.
  location.replace(`/login?next=${encodeURIComponent(location.pathname)}`);
}

async function getJson(path) {
  const response = await fetch(API + path, { cache: "no-store" });
  if (response.status === 401) { signIn(); throw new Error("not signed in"); }
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

async function refresh() {
  try {
    const [regions, page] = await Promise.all([getJson("/regions"), getJson("/cameras?limit=1000")]);
    wall.regions = regions;
    wall.cameras = new Map(page.items.map((c) => [c.id, c]));
    renderTree();
    for (const tile of wall.tiles) {
      if (tile.camera && wall.cameras.has(tile.camera.id)) {
        tile.camera = wall.cameras.get(tile.camera.id);
        tile.render();
      }
    }
  } catch (error) {
    document.getElementById("summary").textContent = `刷新失败 refresh failed: ${error.message}`;
  }
}

async function main() {
  document.querySelectorAll("[data-split]").forEach((b) =>
    b.addEventListener("click", () => setSplit(Number(b.dataset.split))));
  document.getElementById("clear").addEventListener("click", () => {
    wall.tiles[wall.selected].assign(null);
    save();
  });
  document.getElementById("filter").addEventListener("input", renderTree);
  document.querySelectorAll("[data-zoom]").forEach((b) => b.addEventListener("click", () => {
    wall.hours = Number(b.dataset.zoom);
    loadTimeline();
  }));
  document.getElementById("timeline").addEventListener("click", timelineClick);
  document.getElementById("pb-live").addEventListener("click", () => wall.tiles[wall.selected].goLive());
  await refresh();
  const saved = JSON.parse(localStorage.getItem("wall") || "{}");
  setSplit([1, 4, 9, 16].includes(saved.split) ? saved.split : 4);
  (saved.cameras || []).forEach((id, i) => {
    if (id && wall.cameras.has(id) && wall.tiles[i]) wall.tiles[i].assign(wall.cameras.get(id));
  });
  loadTimeline();
  setInterval(() => { refresh(); loadTimeline(); }, REFRESH_MS);
  setInterval(() => wall.tiles.forEach((t) => t.watch()), 1000);
  window.addEventListener("pagehide", () => wall.tiles.forEach((t) => t.stopSession()));
}

main();
