// A camera's picture health: its diagnosis now and its fault timeline over the last 24 h,
// drawn as inline SVG from the events API. Plain browser JavaScript, no build step.
// Open as health.html?camera=<20-digit id> (the video wall links here).
"use strict";

const API = "/api/v1";
const SPAN_S = 24 * 3600;
const REFRESH_MS = 30000;
const PAGE = 1000; // events per request
const MAX_EVENTS = 5000; // a camera with more in a day is drawn from the newest
const LABELS = {
  black: "黑屏 black", frozen: "冻结 frozen", blur: "模糊 blur", occlusion: "遮挡 occlusion",
  color_cast: "偏色 color cast", noise: "雪花 noise", too_dark: "过暗 too dark",
  too_bright: "过亮 too bright", scene_change: "场景变更 scene change",
  signal_loss: "信号丢失 signal loss", motion: "运动 motion",
};
const COLORS = {
  black: "#e74c3c", frozen: "#e67e22", blur: "#f1c40f", occlusion: "#9b59b6",
  color_cast: "#e84393", noise: "#95a5a6", too_dark: "#8e44ad", too_bright: "#fdcb6e",
  scene_change: "#00cec9", signal_loss: "#c0392b", motion: "#3498db",
};
const SVG_NS = "http://www.w3.org/2000/svg";
const camera = new URLSearchParams(location.search).get("camera") || "";
let selected = null; // id of the event shown in the detail panel

function $(id) { return document.getElementById(id); }

function signIn() {
  // The data needs a login (a session cookie), as on the wall; come back here afterwards.
  location.replace(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
}

async function getJson(path) {
  const response = await fetch(API + path, { cache: "no-store" });
  if (response.status === 401) { signIn(); throw new Error("not signed in"); }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message || `${path}: HTTP ${response.status}`);
  return body;
}

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleString("zh-CN", { hour12: false });
}

function epoch(iso) { return iso === null ? null : Date.parse(iso) / 1000; }

async function eventsSince(since) {
  const items = [];
  for (let offset = 0; offset < MAX_EVENTS; offset += PAGE) {
    const page = await getJson(`/events?camera=${camera}&since=${since}&limit=${PAGE}&offset=${offset}`);
    items.push(...page.items);
    if (items.length >= page.total) break;
  }
  return items;
}

function svg(name, attributes, text) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function drawTimeline(types, events, now) {
  const left = 150, right = 12, top = 22, row = 22, width = 1200;
  const height = top + row * types.length + 8;
  const start = now - SPAN_S;
  const x = (t) => left + ((Math.max(t, start) - start) / SPAN_S) * (width - left - right);
  const plot = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "fault timeline, last 24 hours" });
  // hour grid, labelled every 3 hours in the viewer's local time
  const firstHour = Math.ceil(start / 3600) * 3600;
  for (let t = firstHour; t <= now; t += 3600) {
    plot.append(svg("line", { class: "grid", x1: x(t), x2: x(t), y1: top - 4, y2: height - 4 }));
    const hour = new Date(t * 1000).getHours();
    if (hour % 3 === 0) {
      plot.append(svg("text", { class: "tick", x: x(t), y: 14, "text-anchor": "middle" },
        `${String(hour).padStart(2, "0")}:00`));
    }
  }
  types.forEach((type, i) => {
    const y = top + i * row;
    plot.append(svg("text", { class: "label", x: 6, y: y + 15 }, LABELS[type] || type));
    plot.append(svg("line", { class: "grid", x1: left, x2: width - right, y1: y + row, y2: y + row }));
  });
  for (const event of events) {
    const i = types.indexOf(event.type);
    if (i < 0) continue;
    const begin = epoch(event.start), end = epoch(event.end) ?? now;
    const x0 = x(begin), x1 = Math.max(x(end), x0 + 2); // a short event stays visible
    const bar = svg("rect", {
      class: "event" + (event.end === null ? " ongoing" : "") + (event.id === selected ? " selected" : ""),
      x: x0, y: top + i * row + 4, width: x1 - x0, height: row - 8, rx: 2,
      fill: COLORS[event.type] || "#7d8b99", "data-event": event.id,
    });
    const until = event.end === null ? "going on" : clock(end);
    bar.append(svg("title", {}, `${LABELS[event.type] || event.type}\n${clock(begin)} – ${until}` +
      (event.score === null ? "" : `\nscore ${event.score.toFixed(2)}`)));
    bar.addEventListener("click", () => showEvent(event));
    plot.append(bar);
  }
  plot.append(svg("line", { class: "now", x1: x(now), x2: x(now), y1: top - 4, y2: height - 4 }));
  $("timeline").replaceChildren(plot);
}

function showEvent(event) {
  selected = event.id;
  for (const bar of document.querySelectorAll("#timeline rect.event")) {
    bar.classList.toggle("selected", bar.dataset.event === event.id);
  }
  $("detail").hidden = false;
  const evidence = $("evidence");
  evidence.hidden = !event.thumbnail;
  if (event.thumbnail) evidence.src = `${event.thumbnail}?v=${encodeURIComponent(event.end || "")}`;
  const until = event.end === null ? "going on" : clock(epoch(event.end));
  $("detail-text").textContent = `${LABELS[event.type] || event.type}: ${clock(epoch(event.start))}` +
    ` – ${until}` + (event.score === null ? "" : `, score ${event.score.toFixed(2)}`) +
    (event.data && event.data.segment ? `, recording ${event.data.segment}` : "");
}

function fillTable(events) {
  const rows = events.slice(0, 50).map((event) => {
    const tr = document.createElement("tr");
    if (event.end === null) tr.className = "ongoing";
    const cells = [LABELS[event.type] || event.type, clock(epoch(event.start)),
      event.end === null ? "going on" : clock(epoch(event.end)),
      event.score === null ? "" : event.score.toFixed(2), (event.data && event.data.origin) || event.source];
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    tr.addEventListener("click", () => showEvent(event));
    return tr;
  });
  $("events").tBodies[0].replaceChildren(...rows);
}

function fillSummary(info, diagnosis) {
  $("name").textContent = info.name;
  $("camera-id").textContent = info.id;
  const state = $("state");
  state.textContent = info.status.state;
  state.className = `state ${info.status.state}`;
  const verdict = $("verdict");
  verdict.textContent = diagnosis.ok ? "画面正常 picture OK" : "画面故障 picture fault";
  verdict.className = `verdict ${diagnosis.ok ? "ok" : "bad"}`;
  $("faults").textContent = diagnosis.faults.length
    ? diagnosis.faults.map((f) => LABELS[f] || f).join(", ") : "none";
  const how = diagnosis.sampled_live ? "live samples" : "recordings";
  $("analysed").textContent = diagnosis.analysed_at
    ? `${clock(epoch(diagnosis.analysed_at))} (${how})` : "not since the gateway started";
  const reference = $("reference");
  if (diagnosis.reference) {
    $("reference-at").textContent = `learned ${clock(epoch(diagnosis.reference.learned_at))}`;
    reference.src = `${diagnosis.reference.picture}?v=${encodeURIComponent(diagnosis.reference.learned_at)}`;
    reference.hidden = false;
  } else {
    $("reference-at").textContent = "not learned yet";
    reference.hidden = true;
  }
}

async function refresh() {
  const now = Date.now() / 1000;
  try {
    const [info, diagnosis, events] = await Promise.all([
      getJson(`/cameras/${camera}`), getJson(`/cameras/${camera}/diagnosis`),
      eventsSince(Math.floor(now - SPAN_S)),
    ]);
    fillSummary(info, diagnosis);
    drawTimeline(diagnosis.types.map((t) => t.type), events, now);
    fillTable(events);
    $("updated").textContent = `updated ${clock(now)}`;
    $("error").hidden = true;
  } catch (error) {
    $("error").textContent = error.message;
    $("error").hidden = false;
  }
}

$("relearn").addEventListener("click", async () => {
  if (!confirm("Take the picture from now on as this camera's good view?")) return;
  const response = await fetch(`${API}/cameras/${camera}/diagnosis/reference`, { method: "POST" });
  if (response.status === 401) { signIn(); return; }
  $("reference-at").textContent = response.ok ? "relearning…" : `failed: HTTP ${response.status}`;
});

if (!/^\d{20}$/.test(camera)) {
  $("error").textContent = "open this page as health.html?camera=<20-digit camera id>";
  $("error").hidden = false;
} else {
  document.title = `画面诊断 ${camera} · sharpeyes`;
  refresh();
  setInterval(refresh, REFRESH_MS);
}
