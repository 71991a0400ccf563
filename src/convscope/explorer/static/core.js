"use strict";
// convscope explorer, shared pieces: page state, talking to /api, numbers at the model's precision, colours and
// painting. Plain JS, no libraries, offline; classic scripts sharing one global scope (core, graph, maps,
// panels, app, in that order). Every array arrives as {shape, data: base64 little-endian float32}.

const state = {
  info: null,          // /api/model
  pixels: null,        // the 28x28 input (0-255) the model sees
  source: null,        // {kind: "test", index, label} | {kind: "drawing"} | {kind: "upload", name}
  gradientLabel: null, // null: the test image's label, else the predicted class
  mode: "forward",     // "forward": maps and their arithmetic; "backward": gradients and theirs
  scaleMode: "layer",  // "layer": one colour scale per layer's block of maps; "map": one per map
  frozenScales: null,  // after a kernel edit: the scales from before it, kept until the learner rescales
  edits: [],           // kernel edits [{layer, index: [i, j, c, f], value}], sent with every request
  analysis: null,      // /api/analyze
  filters: null,       // /api/filters
  filtersVersion: 0,   // counts /api/filters answers: the weight mosaics are redrawn once per answer
  selected: null,      // {route, body, kind}: the value whose arithmetic the panel shows
  cell: null,          // the server's answer for it
  panelOrigin: null,   // the map the panel was opened from: Escape gives it the focus back
  chosen: null,        // {key, k}: the input channel or filter picked in the panel, for that value
  graph: null,         // drawGraph's handle: select(call)
  drawing: false,      // the pen is down: redraw only the prediction and the maps
  mistakes: null,      // /api/mistakes
};

const $ = (id) => document.getElementById(id);

// An element with attributes and children: el("b", {id: "x", class: "y"}, "text", other).
function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  element.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}

// ------------------------------------------------------------------ talking to the server

// GET `path`, or POST `body` (JSON, or raw bytes of the given type); resolves to the JSON answer, rejects with
// the server's one-line error. body[data-busy] counts requests in flight, so tests can tell the page is settled.
async function api(path, body, type = "application/json") {
  const json = type === "application/json";
  const options = body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": type}, body: json ? JSON.stringify(body) : body,
  };
  document.body.dataset.busy = String(++api.pending);
  try {
    const response = await fetch(path, options);
    let payload;
    try { payload = await response.json(); } catch (e) { payload = {error: response.statusText}; }
    if (!response.ok) throw new Error(payload.error || `HTTP ${response.status}`);
    return payload;
  } finally {
    document.body.dataset.busy = String(--api.pending);
  }
}
api.pending = 0;

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function tensor(obj) {
  const text = atob(obj.data);
  const bytes = new Uint8Array(text.length);
  for (let k = 0; k < text.length; k++) bytes[k] = text.charCodeAt(k);
  return {shape: obj.shape, data: new Float32Array(bytes.buffer)};
}

// ------------------------------------------------------------------ numbers

// A panel value at the model's precision: the shortest decimal that reads back as the same float32 (or
// float64) number. Two values print alike exactly when they are equal at that precision.
function num(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (v === 0) return "0";
  if (state.info && state.info.dtype === "float64") return String(v);
  const target = Math.fround(v);
  for (let p = 1; p <= 9; p++) {
    const text = target.toPrecision(p);
    if (Math.fround(Number(text)) === target) return tidy(text);
  }
  return tidy(target.toPrecision(9));
}

function tidy(text) {
  // "1.50e-5" -> "1.5e-5"; plain decimals stay as they are
  return text.includes("e") ? text.replace(/\.?0+e/, "e") : text;
}

// A rounded value for legends and hover text, where four digits say enough.
function fmt(v, digits = 4) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e-3 && a < 1e5 ? Number(v.toPrecision(digits)).toString() : v.toExponential(digits - 1);
}

// "✓ the same value" only for values equal in the model's dtype; otherwise how far apart, and why.
function verdictText(result, what = "the layer's own value") {
  const dtype = state.info.dtype;
  if (result.matches) return {ok: true, text: `✓ the same ${dtype} value as ${what}`};
  const apart = result.ulps === undefined ? "apart" : `${result.ulps} ulp apart in ${dtype}`;
  const bound = result.bound === undefined ? "" : `; a ${dtype} sum of these products may be off by ±${fmt(result.bound, 2)}`;
  return {ok: false, text: `≈ ${apart}: the model adds in another order, and ${dtype} rounds each step${bound}`};
}

// ------------------------------------------------------------------ colours and painting

// ColorBrewer RdBu (reversed: blue negative, red positive) and viridis, as in the PNG pictures.
const DIVERGING = [[5, 48, 97], [33, 102, 172], [67, 147, 195], [146, 197, 222], [209, 229, 240], [247, 247, 247],
  [253, 219, 199], [244, 165, 130], [214, 96, 77], [178, 24, 43], [103, 0, 31]];
const SEQUENTIAL = [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142], [31, 158, 137],
  [53, 183, 121], [110, 206, 88], [181, 222, 43], [253, 231, 37]];
const GAP = [110, 110, 110];

function ramp(stops, t) {
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  return stops[i].map((v, k) => Math.round(v + (stops[i + 1][k] - v) * f));
}

// The honest scale for some values: symmetric around 0 if any is negative (or if forced), else 0 to the maximum.
// `colour(v)` gives [r, g, b]; it carries a 256-entry lookup table (`colour.lut`, `colour.slot(v)`) for painting
// many cells fast.
function scaleFor(values, forceSigned = false, limit = null) {
  let min = Infinity, max = -Infinity;
  for (const v of values) { if (v < min) min = v; if (v > max) max = v; }
  if (forceSigned || min < 0) {
    const l = limit || Math.max(-min, max) || 1;
    return {signed: true, min: -l, max: l, colour: colourMap(DIVERGING, -l, l)};
  }
  const top = limit || (max > 0 ? max : 1);
  return {signed: false, min: 0, max: top, colour: colourMap(SEQUENTIAL, 0, top)};
}

function colourMap(stops, lo, hi) {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let k = 0; k < 256; k++) lut.set(ramp(stops, k / 255), 3 * k);
  const span = hi - lo || 1;
  const slot = (v) => Math.max(0, Math.min(255, Math.round((v - lo) / span * 255)));
  const colour = (v) => { const k = 3 * slot(v); return [lut[k], lut[k + 1], lut[k + 2]]; };
  colour.lut = lut;
  colour.slot = slot;
  return colour;
}

// Fill an h x w region of `image` (an ImageData) at (x0, y0) with value(r, c) (null: a gap), each cell a
// zoom x zoom square.
function fillCells(image, x0, y0, h, w, zoom, value, colour, gap = GAP) {
  const {data, width} = image;
  const lut = colour.lut;
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const v = value(r, c);
      let red, green, blue;
      if (v === null) { [red, green, blue] = gap; } else if (lut) {
        const k = 3 * colour.slot(v); red = lut[k]; green = lut[k + 1]; blue = lut[k + 2];
      } else { [red, green, blue] = colour(v); }
      for (let dy = 0; dy < zoom; dy++) {
        let k = 4 * ((y0 + r * zoom + dy) * width + x0 + c * zoom);
        for (let dx = 0; dx < zoom; dx++, k += 4) { data[k] = red; data[k + 1] = green; data[k + 2] = blue; data[k + 3] = 255; }
      }
    }
  }
}

// Paint an h x w grid (value(r, c), or null for a gap) into canvas pixels, shown `zoom` times wider (the height
// follows from the canvas's own aspect, so CSS may shrink it to fit a narrow screen).
function paint(canvas, h, w, zoom, value, colour, gap = GAP) {
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  canvas.style.width = `${w * zoom}px`;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  fillCells(image, 0, 0, h, w, 1, value, colour, gap);
  ctx.putImageData(image, 0, 0);
}

function legend(scale, label, note = "") {
  const bar = el("canvas", {"aria-hidden": "true"});
  const steps = 120;
  paint(bar, 1, steps, 1, (r, c) => scale.min + (scale.max - scale.min) * c / (steps - 1), scale.colour);
  bar.classList.add("legend-bar");
  return el("span", {class: "legend"}, `${label}: ${fmt(scale.min)}`, bar, fmt(scale.max),
    scale.signed ? " (white = 0)" : "", note);
}

const NOT_YET = [236, 238, 240];  // a cell a sliding window has not reached

// A small picture of an h x w map (value(r, c), null for a gap shown as `gap`), with marks: [{r, c, h, w,
// colour}] rectangles in cell units. Returns the canvas (drawn at `zoom` screen pixels per cell).
function mapPicture(h, w, zoom, value, scale, marks = [], gap = GAP) {
  const small = el("canvas");
  paint(small, h, w, 1, value, scale.colour, gap);
  const canvas = el("canvas", {class: "picture"});
  const k = Math.max(2, zoom);
  canvas.width = w * k; canvas.height = h * k;
  canvas.style.width = `${w * k}px`;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
  for (const m of marks) {
    ctx.strokeStyle = m.colour || "#ff3b30"; ctx.lineWidth = m.width || 2;
    ctx.strokeRect(m.c * k + 1, m.r * k + 1, (m.w || 1) * k - 2, (m.h || 1) * k - 2);
  }
  return canvas;
}
