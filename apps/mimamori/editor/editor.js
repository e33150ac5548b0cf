// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Mimamori mask editor: polygons over a still, as fractions of the frame (docs/mask-file.md).
// The server (mimamori mask edit) checks every change with the same code as `mask validate`
// and computes each mask's share of the frame; this page only draws and edits.
"use strict";

const HANDLE = 7;        // pixels (of the still) within which a click takes a corner
const DECIMALS = 6;      // fractions to 1e-6: a sixtieth of a pixel even at 16384 wide

const state = {
  version: 1,
  camera: "",
  masks: [],             // {name, polygon: [[x, y], ...]} in fractions
  selected: -1,
  adding: false,         // the selected mask is being drawn point by point
  drag: null,            // {mask, point} while a corner is dragged
  findings: [],
  shares: [],
  width: 0,
  height: 0,
};

const $ = (id) => document.getElementById(id);
const canvas = $("overlay");
const ctx = canvas.getContext("2d");

function round(v) {
  const f = 10 ** DECIMALS;
  return Math.round(Math.min(1, Math.max(0, v)) * f) / f;
}

// The mask file as text: one mask per line, as people write it.
function serialise() {
  const masks = state.masks.map((m) => "    " + JSON.stringify({ name: m.name, polygon: m.polygon }));
  return "{\n  \"version\": " + JSON.stringify(state.version) + ",\n  \"camera\": " + JSON.stringify(state.camera) +
    ",\n  \"masks\": [" + (masks.length ? "\n" + masks.join(",\n") + "\n  " : "") + "]\n}\n";
}

// Pointer position in still pixels, whatever size the picture is shown at.
function toPixels(event) {
  const r = canvas.getBoundingClientRect();
  return [(event.clientX - r.left) * (state.width / r.width), (event.clientY - r.top) * (state.height / r.height)];
}

function cornerAt(px, py) {
  for (let i = state.masks.length - 1; i >= 0; i--) {
    const poly = state.masks[i].polygon;
    for (let k = 0; k < poly.length; k++) {
      if (Math.hypot(poly[k][0] * state.width - px, poly[k][1] * state.height - py) <= HANDLE) return { mask: i, point: k };
    }
  }
  return null;
}

function inside(poly, px, py) {
  let hit = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const xi = poly[i][0] * state.width, yi = poly[i][1] * state.height;
    const xj = poly[j][0] * state.width, yj = poly[j][1] * state.height;
    if ((yi > py) !== (yj > py) && px < ((xj - xi) * (py - yi)) / (yj - yi) + xi) hit = !hit;
  }
  return hit;
}

// The edge of `poly` nearest to the point, as the index to insert a new corner at.
function nearestEdge(poly, px, py) {
  let best = -1, bestDistance = Infinity;
  for (let k = 0; k < poly.length; k++) {
    const a = poly[k], b = poly[(k + 1) % poly.length];
    const ax = a[0] * state.width, ay = a[1] * state.height, bx = b[0] * state.width, by = b[1] * state.height;
    const len2 = (bx - ax) ** 2 + (by - ay) ** 2;
    const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((px - ax) * (bx - ax) + (py - ay) * (by - ay)) / len2));
    const d = Math.hypot(ax + t * (bx - ax) - px, ay + t * (by - ay) - py);
    if (d < bestDistance) { bestDistance = d; best = k + 1; }
  }
  return best;
}

function maskHasFinding(index) { return state.findings.some((f) => f.mask_index === index); }

function draw() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  state.masks.forEach((m, i) => {
    const pts = m.polygon.map(([x, y]) => [x * state.width, y * state.height]);
    if (pts.length === 0) return;
    ctx.beginPath();
    pts.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    if (!(state.adding && i === state.selected)) ctx.closePath();
    ctx.fillStyle = "rgba(0, 0, 0, 0.55)";
    if (pts.length >= 3) ctx.fill();
    ctx.lineWidth = i === state.selected ? 3 : 2;
    ctx.strokeStyle = maskHasFinding(i) ? "#ff5252" : "#ffe600";
    ctx.stroke();
    ctx.fillStyle = i === state.selected ? "#ffffff" : "#ffe600";
    for (const [x, y] of pts) ctx.fillRect(x - 3, y - 3, 7, 7);
    ctx.font = "16px 'Noto Sans CJK JP', sans-serif";
    ctx.fillText(m.name, pts[0][0] + 6, pts[0][1] + 18);
  });
}

// One row per mask. Rows are built when masks are added or removed and otherwise updated in
// place, so that a name being typed keeps its field, its focus and its cursor.
function renderList() {
  const body = document.querySelector("#masks tbody");
  if (body.children.length !== state.masks.length) {
    body.replaceChildren();
    state.masks.forEach((m, i) => body.append(newRow(i)));
  }
  state.masks.forEach((m, i) => {
    const row = body.children[i];
    row.className = "mask-row" + (i === state.selected ? " selected" : "") + (maskHasFinding(i) ? " has-finding" : "");
    row.querySelector("input[type=radio]").checked = i === state.selected;
    const name = row.querySelector("input.name");
    if (document.activeElement !== name) name.value = m.name;
    row.querySelector(".points").textContent = String(m.polygon.length);
    const s = state.shares[i];
    row.querySelector(".share").textContent = typeof s === "number" ? (s * 100).toFixed(2) + " %" : "–";
  });
  $("finish-mask").disabled = !state.adding;
}

function newRow(i) {
  const row = document.createElement("tr");
  const cell = (child, className) => {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (child) td.append(child);
    return td;
  };
  const radio = document.createElement("input");
  radio.type = "radio";
  radio.name = "selected";
  radio.addEventListener("change", () => { state.selected = i; state.adding = false; refresh(false); });
  const name = document.createElement("input");
  name.className = "name";
  name.addEventListener("input", () => { state.masks[i].name = name.value; draw(); scheduleCheck(); });
  const button = document.createElement("button");
  button.type = "button";
  button.className = "delete";
  button.textContent = "Delete";
  button.addEventListener("click", () => {
    state.masks.splice(i, 1);
    state.shares.splice(i, 1);
    state.selected = -1;
    state.adding = false;
    document.querySelector("#masks tbody").replaceChildren();  // indices moved: rebuild
    refresh(true);
  });
  row.append(cell(radio), cell(name), cell(null, "points"), cell(null, "share"), cell(button));
  return row;
}

function renderFindings(total) {
  const list = $("findings");
  list.replaceChildren();
  for (const f of state.findings) {
    const li = document.createElement("li");
    li.textContent = f.text;   // text, never HTML: names are whatever staff typed
    list.append(li);
  }
  if (state.findings.length === 0) {
    const li = document.createElement("li");
    li.className = "none";
    li.textContent = "no findings: the masks are valid";
    list.append(li);
  }
  $("total").textContent = typeof total === "number" ? (total * 100).toFixed(2) + " %" : "";
}

let checkTimer = null;
let checkSerial = 0;
function scheduleCheck() {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(check, 120);
}

async function check() {
  const serial = ++checkSerial;
  const response = await fetch("check", { method: "POST", headers: { "Content-Type": "application/json" }, body: serialise() });
  const result = await response.json();
  if (serial !== checkSerial) return;   // a newer edit is being checked
  state.findings = result.findings;
  state.shares = result.shares;
  renderFindings(result.total);
  renderList();
  draw();
  setStatus(result.valid ? "valid, not saved yet" : result.findings.length + " finding(s)", result.valid);
}

function setStatus(text, ok) {
  $("status").textContent = text;
  $("status").className = ok ? "ok" : "bad";
}

function refresh(changed) {
  renderList();
  draw();
  if (changed) scheduleCheck();
}

function finishMask() {
  state.adding = false;
  refresh(true);
}

canvas.addEventListener("mousedown", (event) => {
  const [px, py] = toPixels(event);
  const point = [round(px / state.width), round(py / state.height)];
  if (state.adding) {
    state.masks[state.selected].polygon.push(point);
    refresh(true);
    return;
  }
  const corner = cornerAt(px, py);
  if (corner && event.altKey) {
    state.masks[corner.mask].polygon.splice(corner.point, 1);
    state.selected = corner.mask;
    refresh(true);
    return;
  }
  if (corner) {
    state.selected = corner.mask;
    state.drag = corner;
    refresh(false);
    return;
  }
  if (event.shiftKey && state.selected >= 0) {
    const poly = state.masks[state.selected].polygon;
    poly.splice(nearestEdge(poly, px, py), 0, point);
    refresh(true);
    return;
  }
  state.selected = -1;   // the topmost mask under the pointer, or none
  for (let i = state.masks.length - 1; i >= 0; i--) {
    if (state.masks[i].polygon.length >= 3 && inside(state.masks[i].polygon, px, py)) { state.selected = i; break; }
  }
  refresh(false);
});

canvas.addEventListener("mousemove", (event) => {
  if (!state.drag) return;
  const [px, py] = toPixels(event);
  state.masks[state.drag.mask].polygon[state.drag.point] = [round(px / state.width), round(py / state.height)];
  draw();
});

window.addEventListener("mouseup", () => {
  if (!state.drag) return;
  state.drag = null;
  refresh(true);
});

canvas.addEventListener("dblclick", () => { if (state.adding) finishMask(); });
window.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && state.adding) finishMask();
});

$("new-mask").addEventListener("click", () => {
  let n = state.masks.length + 1;
  while (state.masks.some((m) => m.name === "mask " + n)) n++;
  state.masks.push({ name: "mask " + n, polygon: [] });
  state.selected = state.masks.length - 1;
  state.adding = true;
  refresh(true);
});
$("finish-mask").addEventListener("click", finishMask);

$("save").addEventListener("click", async () => {
  if (state.adding) state.adding = false;
  const response = await fetch("save", { method: "POST", headers: { "Content-Type": "application/json" }, body: serialise() });
  const result = await response.json();
  state.findings = result.findings;
  state.shares = result.shares;
  renderFindings(result.total);
  refresh(false);
  if (result.saved) setStatus("saved (sha256 " + result.sha256 + ")", true);
  else setStatus("not saved: " + result.findings.length + " finding(s)", false);
});

async function start() {
  const response = await fetch("state");
  const loaded = await response.json();
  state.width = loaded.width;
  state.height = loaded.height;
  canvas.width = loaded.width;
  canvas.height = loaded.height;
  $("file").textContent = loaded.file;
  const doc = JSON.parse(loaded.text);
  state.version = doc.version ?? 1;
  state.camera = doc.camera ?? "";
  state.masks = (Array.isArray(doc.masks) ? doc.masks : []).map((m) => ({
    name: typeof m?.name === "string" ? m.name : "",
    polygon: Array.isArray(m?.polygon) ? m.polygon.filter((p) => Array.isArray(p) && p.length === 2).map((p) => [Number(p[0]), Number(p[1])]) : [],
  }));
  refresh(false);
  await check();
  document.body.dataset.ready = "true";
}

start();
