"use strict";
// convscope explorer page: asks /api for numbers and draws them on canvases. Plain JS, no libraries, offline.
// Every array arrives as {shape, data: base64 little-endian float32}; maps are (height, width, channels).

const state = {
  info: null,          // /api/model
  pixels: null,        // the 28x28 input (0-255) the model sees
  source: null,        // {kind: "test", index, label} | {kind: "drawing"} | {kind: "upload", name}
  gradientLabel: null, // null: the test image's label, else the predicted class
  edits: [],           // kernel edits [{layer, index: [i, j, c, f], value}], sent with every request
  analysis: null,      // /api/analyze
  filters: null,       // /api/filters
  selected: null,      // the feature-map cell whose arithmetic is shown
  cell: null,          // /api/cell for it
  cellChannel: null,   // the input channel chosen in the arithmetic panel, for the cell in cellChannelFor
  cellChannelFor: null,
  latest: 0,           // id of the newest analysis request: older answers are dropped
};

const $ = (id) => document.getElementById(id);
const MAP_TILE = 78;   // screen pixels a feature map tile aims for
const VECTOR_COLUMNS = 40;

// ------------------------------------------------------------------ talking to the server

// GET `path`, or POST `body` (JSON, or raw bytes of the given type); resolves to the JSON answer, rejects with
// the server's one-line error.
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
api.pending = 0;  // requests in flight (body[data-busy]), so tests and people can tell when the page is settled

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function tensor(obj) {
  const bytes = Uint8Array.from(atob(obj.data), (c) => c.charCodeAt(0));
  return {shape: obj.shape, data: new Float32Array(bytes.buffer)};
}

// ------------------------------------------------------------------ colours and drawing

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
function scaleFor(values, forceSigned = false, limit = null) {
  let min = Infinity, max = -Infinity;
  for (const v of values) { if (v < min) min = v; if (v > max) max = v; }
  if (forceSigned || min < 0) {
    const l = limit || Math.max(-min, max) || 1;
    return {signed: true, min: -l, max: l, colour: (v) => ramp(DIVERGING, (v / l + 1) / 2)};
  }
  const top = max > 0 ? max : 1;
  return {signed: false, min: 0, max: top, colour: (v) => ramp(SEQUENTIAL, v / top)};
}

// Paint an h x w grid (value(r, c), or null for a gap) into canvas pixels, shown `zoom` times larger.
function paint(canvas, h, w, zoom, value, colour) {
  canvas.width = w; canvas.height = h;
  canvas.style.width = `${w * zoom}px`; canvas.style.height = `${h * zoom}px`;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const v = value(r, c);
      const [red, green, blue] = v === null ? GAP : colour(v);
      const k = 4 * (r * w + c);
      image.data[k] = red; image.data[k + 1] = green; image.data[k + 2] = blue; image.data[k + 3] = 255;
    }
  }
  ctx.putImageData(image, 0, 0);
}

function legend(scale, label) {
  const box = document.createElement("span");
  box.className = "legend";
  const bar = document.createElement("canvas");
  const steps = 120;
  paint(bar, 1, steps, 1, (r, c) => scale.min + (scale.max - scale.min) * c / (steps - 1), scale.colour);
  bar.style.height = "10px";
  box.append(`${label}: ${fmt(scale.min)}`, bar, fmt(scale.max), scale.signed ? " (white = 0)" : "");
  return box;
}

function fmt(v, digits = 4) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e-3 && a < 1e5 ? Number(v.toPrecision(digits)).toString() : v.toExponential(digits - 1);
}

// A kernel (kh, kw, in, out) as one mosaic: first layers one tile per filter in rows of 8; deeper layers one row
// per filter and one column per input channel. Each weight is `zoom` x `zoom` canvas pixels and tiles are parted
// by one grey pixel, so the gaps stay thin however large the weights are drawn.
function kernelMosaic(t, scale, zoom) {
  const [kh, kw, cin, cout] = t.shape;
  const at = (i, j, c, f) => t.data[((i * kw + j) * cin + c) * cout + f];
  const th = kh * zoom + 1, tw = kw * zoom + 1;  // a tile and its gap
  const first = cin === 1;
  const cols = first ? Math.min(8, cout) : cin, rows = first ? Math.ceil(cout / cols) : cout;
  const canvas = document.createElement("canvas");
  canvas.className = "mosaic";
  paint(canvas, rows * th - 1, cols * tw - 1, 1, (r, c) => {
    const y = r % th, x = c % tw;
    if (y === kh * zoom || x === kw * zoom) return null;
    const row = Math.floor(r / th), col = Math.floor(c / tw);
    const i = Math.floor(y / zoom), j = Math.floor(x / zoom);
    if (!first) return at(i, j, col, row);
    const f = row * cols + col;
    return f < cout ? at(i, j, 0, f) : null;
  }, scale.colour);
  canvas.title = first ? `${cout} filters (rows of ${cols}), each ${kh}x${kw}`
    : `one row per filter (${cout}), one column per input channel (${cin})`;
  return canvas;
}

// ------------------------------------------------------------------ the model column

function renderLayers() {
  const list = $("layer-list");
  list.replaceChildren();
  for (const layer of state.info.layers) {
    const item = document.createElement("li");
    const activation = layer.activation && layer.activation !== "linear" ? `, ${layer.activation}` : "";
    item.innerHTML = "<b></b> <span class='cls'></span><span class='shape'></span><span class='params'></span>";
    item.querySelector("b").textContent = layer.name;
    item.querySelector(".cls").textContent = `${layer.class_name}${activation}`;
    item.querySelector(".shape").textContent = `output ${layer.output_shape.join(" × ")}`;
    item.querySelector(".params").textContent = `${layer.params.toLocaleString("en")} parameters`;
    item.addEventListener("click", () => $(`maps-${layer.name}`)?.scrollIntoView({behavior: "smooth"}));
    list.append(item);
  }
  $("total-params").textContent = `Total: ${state.info.total_params.toLocaleString("en")} parameters`;
}

// ------------------------------------------------------------------ input: test images, drawing, uploads

async function showTestImage(index) {
  const count = state.info.test_count;
  index = ((Number(index) % count) + count) % count;
  $("image-index").value = index;
  const image = await api(`/api/test-image/${index}`);
  state.source = {kind: "test", index, label: image.label};
  state.pixels = image.pixels;
  clearDrawing();
  await analyze();
}

const drawing = {active: false, last: null, timer: null};

function clearDrawing() {
  const ctx = $("draw").getContext("2d");
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, 280, 280);
}

function drawingPixels() {
  const data = $("draw").getContext("2d").getImageData(0, 0, 280, 280).data;
  const out = new Array(280 * 280);
  for (let k = 0; k < out.length; k++) out[k] = data[4 * k];  // grey strokes: the red channel is the intensity
  return out;
}

function setUpDrawing() {
  const canvas = $("draw");
  const ctx = canvas.getContext("2d");
  clearDrawing();
  const point = (e) => {
    const box = canvas.getBoundingClientRect();
    return [(e.clientX - box.left) * 280 / box.width, (e.clientY - box.top) * 280 / box.height];
  };
  canvas.addEventListener("pointerdown", (e) => {
    canvas.setPointerCapture(e.pointerId);
    if (state.source?.kind !== "drawing") clearDrawing();
    state.source = {kind: "drawing"};
    drawing.active = true;
    drawing.last = point(e);
    stroke(ctx, drawing.last, drawing.last);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drawing.active) return;
    const p = point(e);
    stroke(ctx, drawing.last, p);
    drawing.last = p;
    // While drawing, predict a few times a second, so the probabilities follow the pen.
    if (!drawing.timer) drawing.timer = setTimeout(() => { drawing.timer = null; analyzeDrawing(); }, 150);
  });
  const finish = () => {
    if (!drawing.active) return;
    drawing.active = false;
    clearTimeout(drawing.timer); drawing.timer = null;
    analyzeDrawing();
  };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);
  $("clear-drawing").addEventListener("click", () => { clearDrawing(); state.source = {kind: "drawing"}; analyzeDrawing(); });
}

function stroke(ctx, from, to) {
  ctx.strokeStyle = "#fff"; ctx.lineWidth = 20; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath(); ctx.moveTo(...from); ctx.lineTo(...to); ctx.stroke();
}

function analyzeDrawing() {
  return analyze({drawing: drawingPixels()});
}

async function uploadFile(file) {
  if (file.size > state.info.limits.upload_bytes) {
    setStatus(`${file.name} is larger than ${state.info.limits.upload_bytes} bytes`, true);
    return;
  }
  let payload;
  try {
    payload = await api("/api/upload", file, "application/octet-stream");
  } catch (e) {
    setStatus(e.message, true);
    return;
  }
  state.source = {kind: "upload", name: file.name};
  state.pixels = payload.image;
  clearDrawing();
  await analyze();
}

// The 28x28 input on `canvas` (any multiple of 28 wide), with the selected value's receptive field outlined.
function drawInput(canvas) {
  const ctx = canvas.getContext("2d");
  const small = document.createElement("canvas");
  paint(small, 28, 28, 1, (r, c) => state.pixels[r][c], (v) => [v, v, v]);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
  const field = state.cell?.receptive_field;
  if (field) {
    const k = canvas.width / 28;
    ctx.strokeStyle = "#ff3b30"; ctx.lineWidth = 2;
    ctx.strokeRect(field.left * k + 1, field.top * k + 1, (field.right - field.left + 1) * k - 2,
      (field.bottom - field.top + 1) * k - 2);
  }
}

function renderInput() {
  drawInput($("input-view"));
  const s = state.source;
  $("input-note").textContent = !s ? "" : s.kind === "test" ? `${state.info.dataset} test image ${s.index}, label ${s.label}`
    : s.kind === "upload" ? `from ${s.name}, fitted into 28x28 as MNIST does` : "your drawing, fitted into 28x28 as MNIST does";
}

// ------------------------------------------------------------------ analysis: prediction, maps, gradients

function effectiveLabel() {
  if (state.gradientLabel !== null) return state.gradientLabel;
  return state.source?.kind === "test" ? state.source.label : null;
}

async function analyze(input = null) {
  const id = ++state.latest;
  const body = {...(input || {pixels: state.pixels.flat()}), edits: state.edits, label: effectiveLabel()};
  let result;
  try {
    result = await api("/api/analyze", body);
  } catch (e) {
    setStatus(e.message, true);
    return;
  }
  if (id !== state.latest) return;  // a newer request is on its way
  state.pixels = result.image;
  state.analysis = result;
  renderInput();
  renderPrediction();
  renderMaps();
  renderGradients();
  if (state.selected) await showCell(state.selected);
  setStatus(`prediction ${result.prediction}`);
}

function renderPrediction() {
  const {probabilities, prediction} = state.analysis;
  const shown = $("prediction");
  shown.textContent = prediction;
  shown.dataset.prediction = prediction;
  const table = $("probabilities");
  table.replaceChildren();
  probabilities.forEach((p, k) => {
    const row = table.insertRow();
    row.className = k === prediction ? "top" : "";
    row.dataset.digit = k;
    row.dataset.probability = p;
    row.insertCell().textContent = k;
    const bar = row.insertCell();
    bar.className = "bar";
    const fill = document.createElement("div");
    fill.style.width = `${Math.round(p * 100)}%`;
    bar.append(fill);
    row.insertCell().textContent = p.toFixed(4);
  });
}

function mapBlocks(entry, layer) {
  const blocks = [];
  const activation = layer.activation || "activation";
  if (entry.preactivation) blocks.push({kind: "preactivation", title: `before ${activation} (z = conv + bias)`, t: tensor(entry.preactivation)});
  const title = entry.preactivation ? `after ${activation}` : "output";
  blocks.push({kind: "output", title, t: tensor(entry.output)});
  return blocks;
}

function renderMaps() {
  const root = $("maps");
  root.replaceChildren();
  state.analysis.layers.forEach((entry, position) => {
    const layer = state.info.layers[position];
    const section = document.createElement("div");
    section.className = "layer-maps";
    section.id = `maps-${layer.name}`;
    const heading = document.createElement("h3");
    heading.textContent = `${layer.name} (${layer.class_name}) — output ${layer.output_shape.join(" × ")}`;
    section.append(heading);
    for (const block of mapBlocks(entry, layer)) section.append(mapBlock(layer, block));
    root.append(section);
  });
}

function mapBlock(layer, block) {
  const wrap = document.createElement("div");
  const {shape, data} = block.t;
  const scale = scaleFor(data);
  const title = document.createElement("div");
  title.append(`${block.title} `, legend(scale, block.kind === "preactivation" ? "z" : "value"));
  const hover = document.createElement("div");
  hover.className = "hover";
  const grid = document.createElement("div");
  grid.className = "map-grid";
  wrap.append(title, grid, hover);
  if (shape.length === 1) {  // a vector (Flatten, Dense): wrapped rows, for looking only
    const n = shape[0], cols = Math.min(VECTOR_COLUMNS, n), rows = Math.ceil(n / cols);
    const canvas = document.createElement("canvas");
    paint(canvas, rows, cols, n <= 10 ? 24 : 8, (r, c) => (r * cols + c < n ? data[r * cols + c] : null), scale.colour);
    canvas.addEventListener("mousemove", (e) => {
      const zoom = canvas.clientWidth / cols;
      const k = Math.floor(e.offsetY / zoom) * cols + Math.floor(e.offsetX / zoom);
      hover.textContent = k < n ? `${layer.name}[${k}] = ${fmt(data[k], 6)}` : "";
    });
    grid.append(canvas);
    return wrap;
  }
  const [h, w, channels] = shape;
  const zoom = Math.max(2, Math.floor(MAP_TILE / h));
  const clickable = layer.window !== null;
  for (let ch = 0; ch < channels; ch++) {
    const figure = document.createElement("figure");
    const canvas = document.createElement("canvas");
    paint(canvas, h, w, zoom, (r, c) => data[(r * w + c) * channels + ch], scale.colour);
    Object.assign(canvas.dataset, {layer: layer.name, kind: block.kind, channel: ch, height: h, width: w});
    const cellAt = (e) => [Math.min(h - 1, Math.floor(e.offsetY / zoom)), Math.min(w - 1, Math.floor(e.offsetX / zoom))];
    canvas.addEventListener("mousemove", (e) => {
      const [r, c] = cellAt(e);
      hover.textContent = `${layer.name} ${block.title} [row ${r}, col ${c}, channel ${ch}] = ${fmt(data[(r * w + c) * channels + ch], 6)}`
        + (clickable ? " — click for its arithmetic" : "");
    });
    if (clickable) {
      canvas.addEventListener("click", (e) => {
        const [row, col] = cellAt(e);
        showCell({layer: layer.name, row, col, channel: ch});
      });
    }
    if (state.selected && state.selected.layer === layer.name && state.selected.channel === ch) canvas.classList.add("selected");
    const caption = document.createElement("figcaption");
    caption.textContent = `#${ch}`;
    figure.append(canvas, caption);
    grid.append(figure);
  }
  return wrap;
}

function renderGradients() {
  const box = $("input-gradient");
  box.replaceChildren();
  const t = tensor(state.analysis.input_gradient);
  const scale = scaleFor(t.data, true);
  const heading = document.createElement("h3");
  const source = state.analysis.label_source === "given" ? "label" : "predicted class";
  heading.textContent = `Input gradient dL/d(pixel) for ${source} ${state.analysis.label} (saliency)`;
  const canvas = document.createElement("canvas");
  canvas.id = "input-gradient-map";
  paint(canvas, 28, 28, 6, (r, c) => t.data[r * 28 + c], scale.colour);
  box.append(heading, legend(scale, "dL/d(pixel)"), canvas);
  renderFilters();
}

// ------------------------------------------------------------------ filters and kernel gradients

async function loadFilters() {
  state.filters = await api("/api/filters", {edits: state.edits});
  renderFilters();
}

function renderFilters() {
  if (!state.filters || !state.analysis) return;
  const root = $("filters");
  root.replaceChildren();
  const gradients = Object.fromEntries(state.analysis.layers.filter((l) => l.kernel_gradient).map((l) => [l.name, tensor(l.kernel_gradient)]));
  for (const layer of state.filters.layers) {
    const card = document.createElement("div");
    card.className = "card";
    const kernel = tensor(layer.kernel);
    const [kh, kw, cin, cout] = kernel.shape;
    const heading = document.createElement("h3");
    heading.textContent = `${layer.name}: ${cout} filters of ${kh}×${kw}×${cin}`;
    const row = document.createElement("div");
    row.className = "row";
    const zoom = cin === 1 ? 12 : 4;
    const weights = document.createElement("div");
    const weightScale = scaleFor(kernel.data, true);
    weights.append(legend(weightScale, "weight"), kernelMosaic(kernel, weightScale, zoom));
    row.append(weights);
    if (gradients[layer.name]) {
      const g = gradients[layer.name];
      const gradScale = scaleFor(g.data, true);
      const grads = document.createElement("div");
      grads.append(legend(gradScale, `dL/d(weight), label ${state.analysis.label}`), kernelMosaic(g, gradScale, zoom));
      row.append(grads);
    }
    const note = document.createElement("p");
    note.className = "note";
    note.textContent = cin === 1 ? "One tile per filter, in rows of 8." : "One row per filter, one column per input channel.";
    card.append(heading, note, row);
    root.append(card);
  }
}

// ------------------------------------------------------------------ one value, step by step

async function showCell(selection) {
  state.selected = selection;
  let cell;
  try {
    cell = await api("/api/cell", {pixels: state.pixels.flat(), edits: state.edits, ...selection});
  } catch (e) {
    setStatus(e.message, true);
    return;
  }
  state.cell = cell;
  document.querySelectorAll(".map-grid canvas.selected").forEach((c) => c.classList.remove("selected"));
  document.querySelectorAll(`.map-grid canvas[data-layer="${selection.layer}"][data-channel="${selection.channel}"]`)
    .forEach((c) => c.classList.add("selected"));
  renderInput();
  renderCell();
}

function table(t, inside, channel, cellText) {
  const [kh, kw, depth] = t.shape.length === 3 ? t.shape : [...t.shape, 1];
  const element = document.createElement("table");
  for (let i = 0; i < kh; i++) {
    const row = element.insertRow();
    for (let j = 0; j < kw; j++) {
      const td = row.insertCell();
      const v = t.data[(i * kw + j) * depth + channel];
      if (inside && !inside[i][j]) td.className = "pad";
      cellText(td, v, i, j);
    }
  }
  return element;
}

function titled(title, element) {
  const box = document.createElement("div");
  const h = document.createElement("h4");
  h.textContent = title;
  box.append(h, element);
  return box;
}

function equationLine(parent, html, id, value) {
  const line = document.createElement("div");
  line.innerHTML = html;
  if (id) {
    const b = line.querySelector("b");
    b.id = id;
    b.dataset.value = value;
    b.textContent = fmt(value, 7);
  }
  parent.append(line);
}

function renderCell() {
  const cell = state.cell;
  const body = $("cell-body");
  body.replaceChildren();
  const heading = document.createElement("p");
  const field = cell.receptive_field;
  heading.innerHTML = "<b></b><br><span class='note'></span>";
  heading.querySelector("b").textContent = `${cell.layer} (${cell.class_name}), row ${cell.row}, col ${cell.col}, channel ${cell.channel}`;
  heading.querySelector(".note").textContent = `It sees input pixels rows ${field.top}-${field.bottom}, cols ${field.left}-${field.right} `
    + `(outlined in red). Window ${cell.window.size.join("×")}, stride ${cell.window.strides.join("×")}; `
    + "the layer's input values below are what the previous layer output (pixels scaled to 0-1 for the first layer).";
  const view = document.createElement("canvas");
  view.id = "receptive-field";
  view.width = view.height = 140;
  body.append(heading, view);
  drawInput(view);
  const patch = tensor(cell.patch);
  const equation = document.createElement("div");
  equation.className = "equation";
  if (cell.kind === "conv") {
    renderConvCell(body, cell, patch, equation);
  } else {
    body.append(titled(`window of the layer's input, channel ${cell.channel} (grey: padding, not counted)`,
      table(patch, cell.patch_inside, 0, (td, v) => { td.textContent = fmt(v); })));
    body.append(equation);
    equationLine(equation, `${cell.kind} of the window = <b></b>`, "cell-output", cell.output);
  }
  const traced = document.createElement("div");
  traced.innerHTML = "model's forward pass (trace): <b></b> <span></span>";
  const tracedValue = traced.querySelector("b");
  tracedValue.id = "cell-traced";
  tracedValue.dataset.value = cell.traced_output;
  tracedValue.textContent = fmt(cell.traced_output, 7);
  const verdict = traced.querySelector("span");
  verdict.id = "cell-match";
  verdict.className = cell.matches ? "match" : "mismatch";
  verdict.textContent = cell.matches ? "✓ the same value" : "✗ differs";
  equation.append(traced);
}

function renderConvCell(body, cell, patch, equation) {
  const kernel = tensor(cell.kernel), products = tensor(cell.products);
  const sums = tensor(cell.channel_sums).data;
  const depth = kernel.shape[2];
  const firstChannel = cell.input_channels[0];
  // Show the input channel that contributes most; the others are one click away.
  let shown = 0;
  sums.forEach((s, k) => { if (Math.abs(s) > Math.abs(sums[shown])) shown = k; });
  if (state.cellChannelFor === `${cell.layer}/${cell.channel}` && state.cellChannel < depth) shown = state.cellChannel;
  if (depth > 1) {
    const chooser = document.createElement("p");
    chooser.innerHTML = "<label>input channel <select id='cell-input-channel'></select></label> <span class='note'>(sum of its products)</span>";
    const select = chooser.querySelector("select");
    sums.forEach((s, k) => select.add(new Option(`${firstChannel + k}: ${fmt(s)}`, k, false, k === shown)));
    select.addEventListener("change", () => {
      state.cellChannel = Number(select.value);
      state.cellChannelFor = `${cell.layer}/${cell.channel}`;
      renderCell();
    });
    body.append(chooser);
  }
  const tables = document.createElement("div");
  tables.className = "tables";
  const inputChannel = firstChannel + shown;
  tables.append(
    titled(`input patch (channel ${inputChannel})`, table(patch, cell.patch_inside, shown, (td, v) => { td.textContent = fmt(v); })),
    titled("× kernel (edit me)", table(kernel, null, shown, (td, v, i, j) => kernelInput(td, v, [i, j, shown, cell.channel], cell.layer))),
    titled("= products", table(products, null, shown, (td, v) => { td.textContent = fmt(v); })),
  );
  body.append(tables, equation);
  const [kh, kw] = kernel.shape;
  const count = depth > 1 ? `${kh * kw * depth} products (${kh}×${kw} over ${depth} input channels)` : `the ${kh * kw} products`;
  equationLine(equation, `sum of ${count} = <b></b>`, "cell-sum", cell.sum);
  equationLine(equation, "+ bias = <b></b>", "cell-bias", cell.bias);
  equationLine(equation, "= z = <b></b>", "cell-z", cell.z);
  equationLine(equation, `${cell.activation}(z) = <b></b>`, "cell-output", cell.output);
}

function kernelInput(td, value, index, layer) {
  const input = document.createElement("input");
  input.type = "number";
  input.step = "any";
  input.value = Number(value.toPrecision(4));
  input.dataset.index = index.join(",");
  input.setAttribute("aria-label", `kernel weight ${index.join(", ")}`);
  if (state.edits.some((e) => e.layer === layer && e.index.join(",") === index.join(","))) input.classList.add("edited");
  input.addEventListener("change", async () => {
    const v = Number(input.value);
    if (input.value.trim() === "" || !Number.isFinite(v)) { input.value = Number(value.toPrecision(4)); return; }
    state.edits = state.edits.filter((e) => !(e.layer === layer && e.index.join(",") === index.join(",")));
    state.edits.push({layer, index, value: v});
    await applyEdits();
  });
  td.append(input);
}

async function applyEdits() {
  const n = state.edits.length;
  $("edit-count").textContent = n ? `${n} kernel weight${n > 1 ? "s" : ""} edited (maps, prediction and filters use the edits).`
    : "No kernel edits.";
  $("reset-edits").hidden = n === 0;
  await loadFilters();
  await analyze();
}

// ------------------------------------------------------------------ a run folder: curves and filters by epoch

function chart(canvas, title, series) {
  const ctx = canvas.getContext("2d");
  const {width, height} = canvas;
  const pad = {left: 52, right: 12, top: 40, bottom: 36};
  ctx.clearRect(0, 0, width, height);
  const all = series.flatMap((s) => s.values);
  let lo = Math.min(...all), hi = Math.max(...all);
  if (hi === lo) { hi += 1; lo -= 1; }
  const n = Math.max(...series.map((s) => s.values.length));
  const x = (k) => pad.left + (n === 1 ? 0 : (k / (n - 1)) * (width - pad.left - pad.right));
  const y = (v) => pad.top + (1 - (v - lo) / (hi - lo)) * (height - pad.top - pad.bottom);
  ctx.font = "12px system-ui, sans-serif";
  ctx.fillStyle = "#1d232a";
  ctx.fillText(title, pad.left, 16);
  ctx.strokeStyle = "#d6dbe0";
  ctx.fillStyle = "#5b6570";
  for (let k = 0; k <= 4; k++) {
    const v = lo + (hi - lo) * k / 4;
    ctx.beginPath(); ctx.moveTo(pad.left, y(v)); ctx.lineTo(width - pad.right, y(v)); ctx.stroke();
    ctx.fillText(fmt(v, 3), 4, y(v) + 4);
  }
  for (let k = 0; k < n; k++) {
    if (n <= 20 || k % Math.ceil(n / 10) === 0) ctx.fillText(String(k + 1), x(k) - 4, height - pad.bottom + 16);
  }
  ctx.fillText("epoch", width / 2 - 16, height - 6);
  series.forEach((s, i) => {
    ctx.strokeStyle = s.colour; ctx.lineWidth = 2;
    ctx.setLineDash(s.dashed ? [6, 4] : []);
    ctx.beginPath();
    s.values.forEach((v, k) => (k ? ctx.lineTo(x(k), y(v)) : ctx.moveTo(x(k), y(v))));
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = s.colour;  // the legend sits above the plot, where no curve can cover it
    ctx.fillText(`${s.name} (last ${fmt(s.values[s.values.length - 1])})`, width - pad.right - 190, 14 + 14 * i);
  });
}

function renderRun() {
  const run = state.info.run;
  if (!run) return;
  $("run-section").hidden = false;
  const history = run.history || {};
  for (const [metric, id] of [["loss", "loss-chart"], ["accuracy", "accuracy-chart"]]) {
    const series = [];
    if (history[metric]) series.push({name: "training", values: history[metric], colour: "#1f77b4"});
    if (history[`val_${metric}`]) series.push({name: "validation", values: history[`val_${metric}`], colour: "#ff7f0e", dashed: true});
    if (series.length) chart($(id), metric, series);
  }
  const select = $("run-layer");
  run.layers.forEach((name) => select.add(new Option(name, name)));
  const slider = $("run-epoch");
  slider.min = run.epochs[0]; slider.max = run.epochs[run.epochs.length - 1]; slider.value = slider.min;
  const update = () => showEpoch(Number(slider.value), select.value);
  slider.addEventListener("input", update);
  select.addEventListener("change", update);
  if (run.layers.length) update();
}

async function showEpoch(epoch, layerName) {
  const snapshot = await api(`/api/run/filters/${epoch}`);
  const layer = snapshot.layers.find((l) => l.name === layerName);
  const kernel = tensor(layer.kernel);
  // One colour limit for every epoch, so growing filters look stronger instead of being re-scaled.
  const scale = scaleFor(kernel.data, true, state.info.run.limits[layerName]);
  $("run-epoch-label").textContent = epoch === 0 ? "initialization" : `after epoch ${epoch}`;
  $("run-filters").replaceChildren(legend(scale, "weight (same scale for all epochs)"), kernelMosaic(kernel, scale, kernel.shape[2] === 1 ? 12 : 4));
}

// ------------------------------------------------------------------ start

async function main() {
  try {
    state.info = await api("/api/model");
  } catch (e) {
    setStatus(`cannot load the model: ${e.message}`, true);
    return;
  }
  $("model-title").textContent = `${state.info.name} — ${state.info.model_file}`;
  $("dataset-note").textContent = `of ${state.info.test_count} (${state.info.dataset})`;
  $("image-index").max = state.info.test_count - 1;
  renderLayers();
  const labels = $("gradient-label");
  labels.add(new Option("the test image's label, else the prediction", ""));
  for (let k = 0; k < 10; k++) labels.add(new Option(String(k), String(k)));
  labels.addEventListener("change", () => { state.gradientLabel = labels.value === "" ? null : Number(labels.value); analyze(); });
  $("image-index").addEventListener("change", (e) => showTestImage(e.target.value));
  $("prev-image").addEventListener("click", () => showTestImage(Number($("image-index").value) - 1));
  $("next-image").addEventListener("click", () => showTestImage(Number($("image-index").value) + 1));
  $("random-image").addEventListener("click", () => showTestImage(Math.floor(Math.random() * state.info.test_count)));
  $("upload").addEventListener("change", (e) => e.target.files[0] && uploadFile(e.target.files[0]));
  $("reset-edits").addEventListener("click", () => { state.edits = []; applyEdits(); });
  setUpDrawing();
  renderRun();
  await loadFilters();
  await showTestImage(0);
  document.body.dataset.ready = "1";
}

main();
