// The warmstart explorer: a page over the server's JSON API, with no build step and nothing
// fetched from outside the server. Text from the server is shown with textContent only.
"use strict";

const KEY_STORE = "warmstart-api-key";
const $ = (id) => document.getElementById(id);
let models = [];
let current = null;

function status(message) { $("status").textContent = message || ""; }

async function api(path, body) {
  const headers = {};
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers.Authorization = "Bearer " + key;
  const init = { headers };
  if (body !== undefined) {
    init.method = "POST";
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const data = await r.json().catch(() => ({}));
  if (r.status === 401) {
    $("key-form").hidden = false;
    $("key").focus();
  }
  if (!r.ok) {
    const e = (data && data.error) || {};
    throw new Error(e.message || `${r.status} ${r.statusText}`);
  }
  return data;
}

function guarded(fn) {
  return async (event) => {
    if (event) event.preventDefault();
    status("");
    try { await fn(); } catch (e) { status(e.message); }
  };
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

// -- models -------------------------------------------------------------------------------

async function loadModels() {
  models = (await api("/v1/models")).models;
  const select = $("model");
  select.replaceChildren(...models.map((m) => el("option", `${m.name} (${m.kind})`)));
  models.forEach((m, i) => { select.options[i].value = m.name; });
  const wanted = new URLSearchParams(location.search).get("model");
  if (wanted && models.some((m) => m.name === wanted)) select.value = wanted;
  $("key-form").hidden = !!sessionStorage.getItem(KEY_STORE) || $("key-form").hidden;
  await pick();
}

async function pick() {
  current = models.find((m) => m.name === $("model").value) || null;
  const caps = current ? current.capabilities : [];
  document.querySelectorAll("section[data-needs]").forEach((s) => {
    s.hidden = !caps.includes(s.dataset.needs);
  });
  if (!current) return;
  const info = [current.kind, caps.join(", ")];
  if (current.vectors) info.push(`${current.vectors.words.toLocaleString()} words, dim ${current.vectors.dim}`);
  $("model-info").textContent = info.join(" · ");
  const tasks = current.tasks || [];
  $("task").replaceChildren(...tasks.map((t) => el("option", t.name)));
  $("task").parentElement.hidden = tasks.length < 2;
  for (const id of ["bars", "neighbors", "analogy"]) $(id).replaceChildren();
  $("label").textContent = "";
  if (caps.includes("neighbors")) await drawMap();
}

// -- classify -----------------------------------------------------------------------------

async function classify() {
  const text = $("text").value;
  if (!text.trim()) throw new Error("type some text to classify");
  const body = { texts: [text], top_k: 1000 };
  if ((current.tasks || []).length > 1) body.task = $("task").value;
  const data = await api(`/v1/models/${encodeURIComponent(current.name)}/classify`, body);
  const res = data.results[0];
  $("label").textContent = data.multi_label ? (res.labels.join(", ") || "(none)") : res.label;
  $("truncated").textContent = res.truncated ? "(the text was cut to fit the model)" : "";
  const rows = [];
  for (const { label, probability } of res.top_k) {
    const chosen = data.multi_label ? res.labels.includes(label) : label === res.label;
    const bar = el("div", undefined, "bar");
    const fill = el("span");
    fill.style.width = `${(100 * probability).toFixed(1)}%`;
    bar.append(fill);
    rows.push(el("span", label, chosen ? "top" : ""), bar,
              el("span", probability.toFixed(3), "num"));
  }
  $("bars").replaceChildren(...rows);
}

// -- neighbours and analogies ---------------------------------------------------------------

function wordList(target, words) {
  target.replaceChildren(...words.map(({ word, similarity }) => {
    const li = el("li", word);
    li.dataset.word = word;
    li.append(el("span", similarity.toFixed(3)));
    return li;
  }));
}

async function neighbors(word) {
  word = (word || $("word").value).trim();
  if (!word) throw new Error("type a word");
  $("word").value = word;
  const k = Number($("k").value) || 10;
  const q = new URLSearchParams({ word, k });
  const data = await api(`/v1/models/${encodeURIComponent(current.name)}/neighbors?${q}`);
  wordList($("neighbors"), data.neighbors);
  map.highlight = new Set([word, ...data.neighbors.map((n) => n.word)]);
  render();
}

async function analogy() {
  const [a, b, c] = ["a", "b", "c"].map((id) => $(id).value.trim());
  if (!a || !b || !c) throw new Error("fill in the three words");
  const data = await api(`/v1/models/${encodeURIComponent(current.name)}/analogy`,
                         { a, b, c, k: 10 });
  wordList($("analogy"), data.answers);
}

// -- the map ------------------------------------------------------------------------------

const map = { words: [], points: [], scale: 1, dx: 0, dy: 0, highlight: new Set(), hover: -1 };

async function drawMap() {
  const n = Number($("map-n").value) || 300;
  const method = $("map-method").value;
  $("map-caption").textContent = "laying out the words…";
  const data = await api(
    `/v1/models/${encodeURIComponent(current.name)}/map?n=${n}&method=${method}`);
  $("map-caption").textContent = data.method === "umap" ? "UMAP by cosine ·"
    : `PCA of the unit vectors (${Math.round(100 * (data.explained[0] + data.explained[1]))}% of the variance) ·`;
  map.words = data.words;
  map.points = data.points;
  map.highlight = new Set();
  fit();
  render();
}

function fit() {
  // The scale and offset that put every point inside the canvas, with a margin.
  const canvas = $("map");
  const xs = map.points.map((p) => p[0]);
  const ys = map.points.map((p) => p[1]);
  const w = (Math.max(...xs) - Math.min(...xs)) || 1;
  const h = (Math.max(...ys) - Math.min(...ys)) || 1;
  map.scale = 0.9 * Math.min(canvas.width / w, canvas.height / h);
  map.dx = canvas.width / 2 - map.scale * (Math.max(...xs) + Math.min(...xs)) / 2;
  map.dy = canvas.height / 2 + map.scale * (Math.max(...ys) + Math.min(...ys)) / 2;
}

function screen(i) {
  const [x, y] = map.points[i];
  return [map.dx + map.scale * x, map.dy - map.scale * y];
}

function render() {
  const canvas = $("map");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = "12px system-ui, sans-serif";
  // Labels for the most frequent words first, skipping any that would overlap one drawn.
  const placed = [];
  let drawn = 0;
  for (let i = 0; i < map.points.length; i++) {
    const [x, y] = screen(i);
    if (x < -5 || y < -5 || x > canvas.width + 5 || y > canvas.height + 5) continue;
    const hot = map.highlight.has(map.words[i]) || i === map.hover;
    ctx.fillStyle = hot ? "#d2462f" : "rgba(47, 111, 222, 0.75)";
    ctx.beginPath();
    ctx.arc(x, y, hot ? 4.5 : 3, 0, 2 * Math.PI);
    ctx.fill();
    drawn++;
    const w = ctx.measureText(map.words[i]).width;
    const box = [x + 5, y - 12, w, 14];
    if (!hot && placed.some((b) => box[0] < b[0] + b[2] && b[0] < box[0] + box[2] &&
                                   box[1] < b[1] + b[3] && b[1] < box[1] + box[3])) continue;
    if (!hot && placed.length > 80) continue;
    placed.push(box);
    ctx.fillStyle = hot ? "#8c1d0f" : "#4a5163";
    ctx.fillText(map.words[i], x + 5, y - 2);
  }
  canvas.dataset.points = String(drawn);
  canvas.dataset.words = String(map.points.length);
}

function nearest(event) {
  const canvas = $("map");
  const r = canvas.getBoundingClientRect();
  const mx = (event.clientX - r.left) * canvas.width / r.width;
  const my = (event.clientY - r.top) * canvas.height / r.height;
  let best = -1;
  let bestD = 64; // within 8 canvas pixels
  for (let i = 0; i < map.points.length; i++) {
    const [x, y] = screen(i);
    const d = (x - mx) ** 2 + (y - my) ** 2;
    if (d < bestD) { best = i; bestD = d; }
  }
  return { best, mx, my };
}

function wireMap() {
  const canvas = $("map");
  const tip = $("tooltip");
  let drag = null;
  canvas.addEventListener("wheel", (event) => {
    event.preventDefault();
    const { mx, my } = nearest(event);
    const f = Math.exp(-event.deltaY * 0.0015);
    // Zoom about the cursor: the point under it stays put.
    map.dx = mx - f * (mx - map.dx);
    map.dy = my - f * (my - map.dy);
    map.scale *= f;
    render();
  }, { passive: false });
  canvas.addEventListener("mousedown", (event) => {
    drag = { x: event.clientX, y: event.clientY, moved: false };
  });
  window.addEventListener("mouseup", () => { setTimeout(() => { drag = null; }, 0); });
  canvas.addEventListener("mousemove", (event) => {
    if (drag && event.buttons) {
      const r = canvas.getBoundingClientRect();
      map.dx += (event.clientX - drag.x) * canvas.width / r.width;
      map.dy += (event.clientY - drag.y) * canvas.height / r.height;
      drag.moved = drag.moved || Math.abs(event.clientX - drag.x) + Math.abs(event.clientY - drag.y) > 2;
      drag.x = event.clientX;
      drag.y = event.clientY;
    }
    const { best } = nearest(event);
    if (best !== map.hover) { map.hover = best; render(); }
    tip.hidden = best < 0;
    if (best >= 0) {
      const [x, y] = screen(best);
      const r = canvas.getBoundingClientRect();
      tip.textContent = map.words[best];
      tip.style.left = `${x * r.width / canvas.width + 10}px`;
      tip.style.top = `${y * r.height / canvas.height - 28}px`;
    }
  });
  canvas.addEventListener("mouseleave", () => { tip.hidden = true; map.hover = -1; render(); });
  canvas.addEventListener("click", (event) => {
    if (drag && drag.moved) return;
    const { best } = nearest(event);
    if (best >= 0) guarded(() => neighbors(map.words[best]))();
  });
  canvas.addEventListener("dblclick", () => { fit(); render(); });
}

// -- start --------------------------------------------------------------------------------

window.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", guarded(async () => {
    sessionStorage.setItem(KEY_STORE, $("key").value.trim());
    $("key").value = "";
    $("key-form").hidden = true;
    await loadModels();
  }));
  $("model").addEventListener("change", guarded(pick));
  $("classify-form").addEventListener("submit", guarded(classify));
  $("neighbors-form").addEventListener("submit", guarded(() => neighbors()));
  $("analogy-form").addEventListener("submit", guarded(analogy));
  $("map-form").addEventListener("submit", guarded(drawMap));
  wireMap();
  guarded(loadModels)();
});
