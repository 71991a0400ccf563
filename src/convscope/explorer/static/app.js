"use strict";
// convscope explorer page: the input (test images, mistakes, drawing by mouse, touch or keyboard, uploads), the
// prediction, the layer list and graph, filters, a run folder's curves, and start-up. Maps are in maps.js, the
// one-value panel in panels.js, shared pieces in core.js.

// ------------------------------------------------------------------ the model column: list and graph

function renderLayers() {
  const list = $("layer-list");
  list.replaceChildren();
  for (const layer of state.info.layers) {
    const activation = layer.activation && layer.activation !== "linear" ? `, ${layer.activation}` : "";
    const inputs = layer.inbound.length ? `← ${layer.inbound.join(", ")}` : "";
    const button = el("button", {type: "button", class: "layer-button", dataset: {call: layer.call},
      "aria-label": `layer ${layer.call}, ${layer.class_name}${activation}, output ${layer.output_shape.join(" by ")}, `
        + `${layer.params} parameters, inputs ${layer.inbound.join(", ") || "none"}. Go to its maps.`},
      el("b", {}, layer.call), " ", el("span", {class: "cls"}, `${layer.class_name}${activation}`),
      el("span", {class: "inputs"}, inputs), el("span", {class: "shape"}, `output ${layer.output_shape.join(" × ")}`),
      el("span", {class: "params"}, `${layer.params.toLocaleString("en")} parameters`));
    button.addEventListener("click", () => goToLayer(layer.call));
    list.append(el("li", {}, button));
  }
  $("total-params").textContent = `Total: ${state.info.total_params.toLocaleString("en")} parameters`;
  state.graph = drawGraph($("graph"), state.info.layers, {selected: null, onPick: goToLayer});
}

// Scroll to a layer's maps and give its first map the keyboard focus.
function goToLayer(call) {
  const section = $(`maps-${call}`);
  if (!section) return;
  section.scrollIntoView({block: "start"});
  const first = section.querySelector("canvas[tabindex='0']");
  if (first) first.focus({preventScroll: true});
  if (state.graph) state.graph.select(call);
}

// ------------------------------------------------------------------ input: test images, mistakes, drawing, uploads

async function showTestImage(index) {
  const count = state.info.test_count;
  index = ((Math.trunc(Number(index) || 0) % count) + count) % count;
  $("image-index").value = index;
  let image;
  try {
    image = await api(`/api/test-image/${index}`);
  } catch (e) {
    setStatus(e.message, true);
    return;
  }
  state.source = {kind: "test", index, label: image.label};
  state.pixels = image.pixels;
  clearDrawing();
  await requestAnalysis();
}

async function loadMistakes() {
  if (!state.mistakes) {
    try {
      state.mistakes = await api("/api/mistakes");
    } catch (e) {
      setStatus(e.message, true);
      return null;
    }
  }
  const m = state.mistakes;
  $("mistake-count").textContent = `${m.indices.length} of ${m.of} test images misclassified`;
  return m;
}

async function nextMistake(step) {
  const m = await loadMistakes();
  if (!m) return;
  if (!m.indices.length) { setStatus("the model classifies every test image correctly"); return; }
  const current = state.source?.kind === "test" ? state.source.index : -1;
  const later = step > 0 ? m.indices.find((k) => k > current) : [...m.indices].reverse().find((k) => k < current);
  await showTestImage(later ?? (step > 0 ? m.indices[0] : m.indices[m.indices.length - 1]));
}

const pen = {active: false, last: null, keyboard: [140, 140], down: false};

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

function stroke(from, to) {
  const ctx = $("draw").getContext("2d");
  ctx.strokeStyle = "#fff"; ctx.lineWidth = 20; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath(); ctx.moveTo(...from); ctx.lineTo(...to); ctx.stroke();
}

function startDrawing() {
  if (state.source?.kind !== "drawing") clearDrawing();
  state.source = {kind: "drawing"};
  state.drawing = true;
}

function endDrawing() {
  state.drawing = false;
  requestAnalysis({drawing: drawingPixels()});
}

function setUpDrawing() {
  const canvas = $("draw");
  clearDrawing();
  const point = (e) => {
    const box = canvas.getBoundingClientRect();
    return [(e.clientX - box.left) * 280 / box.width, (e.clientY - box.top) * 280 / box.height];
  };
  canvas.addEventListener("pointerdown", (e) => {
    canvas.setPointerCapture(e.pointerId);
    startDrawing();
    pen.active = true;
    pen.last = point(e);
    stroke(pen.last, pen.last);
    requestAnalysis({drawing: drawingPixels()});
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!pen.active) return;
    const p = point(e);
    stroke(pen.last, p);
    pen.last = p;
    // The newest drawing replaces any waiting one: one request in flight, and the prediction follows the pen.
    requestAnalysis(() => ({drawing: drawingPixels()}));
  });
  const finish = () => {
    if (!pen.active) return;
    pen.active = false;
    endDrawing();
  };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);
  // By keyboard: arrows move the pen (Shift: faster), Space lifts or lowers it; a lowered pen draws as it moves.
  canvas.addEventListener("keydown", (e) => {
    const moves = {ArrowUp: [0, -1], ArrowDown: [0, 1], ArrowLeft: [-1, 0], ArrowRight: [1, 0]};
    const step = e.shiftKey ? 30 : 10;
    if (moves[e.key]) {
      const [dx, dy] = moves[e.key];
      const from = pen.keyboard;
      pen.keyboard = [Math.min(270, Math.max(10, from[0] + dx * step)), Math.min(270, Math.max(10, from[1] + dy * step))];
      if (pen.down) { stroke(from, pen.keyboard); requestAnalysis(() => ({drawing: drawingPixels()})); }
    } else if (e.key === " " || e.key === "Enter") {
      pen.down = !pen.down;
      if (pen.down) { startDrawing(); stroke(pen.keyboard, pen.keyboard); requestAnalysis(() => ({drawing: drawingPixels()})); }
      else endDrawing();
    } else {
      return;
    }
    e.preventDefault();
    showPen();
  });
  canvas.addEventListener("focus", () => { if (canvas.matches(":focus-visible")) showPen(); });  // keyboard only
  canvas.addEventListener("blur", () => { $("pen").hidden = true; if (pen.down) { pen.down = false; endDrawing(); } });
  $("clear-drawing").addEventListener("click", () => { clearDrawing(); state.source = {kind: "drawing"}; endDrawing(); });
}

function showPen() {
  const canvas = $("draw"), ring = $("pen");
  const k = canvas.clientWidth / 280;
  ring.hidden = false;
  ring.classList.toggle("down", pen.down);
  ring.style.left = `${canvas.offsetLeft + pen.keyboard[0] * k - 10}px`;
  ring.style.top = `${canvas.offsetTop + pen.keyboard[1] * k - 10}px`;
  $("pen-state").textContent = `pen ${pen.down ? "down (drawing)" : "up"} at (${Math.round(pen.keyboard[0] / 10)}, `
    + `${Math.round(pen.keyboard[1] / 10)}) of 28 × 28`;
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
  await requestAnalysis();
}

// The 28x28 input on `canvas` (any multiple of 28 wide), with the selected value's receptive field outlined.
function drawInput(canvas) {
  const ctx = canvas.getContext("2d");
  const small = el("canvas");
  paint(small, 28, 28, 1, (r, c) => state.pixels[r][c], (v) => [v, v, v]);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
  const field = state.cell?.receptive_field;
  if (field && !field.whole) {
    const k = canvas.width / 28;
    ctx.strokeStyle = "#ff3b30"; ctx.lineWidth = 2;
    ctx.strokeRect(field.left * k + 1, field.top * k + 1, (field.right - field.left + 1) * k - 2,
      (field.bottom - field.top + 1) * k - 2);
  }
}

function renderInput() {
  drawInput($("input-view"));
  const s = state.source, a = state.analysis;
  $("input-note").textContent = !s ? "" : s.kind === "test" ? `${state.info.dataset} test image ${s.index}, label ${s.label}`
    : s.kind === "upload" ? `from ${s.name}, fitted into 28x28 as MNIST does` : "your drawing, fitted into 28x28 as MNIST does";
  const wrong = s?.kind === "test" && a && a.prediction !== s.label;
  $("mistake-flag").hidden = !wrong;
  if (wrong) $("mistake-flag").textContent = `✗ misclassified: label ${s.label}, predicted ${a.prediction}`;
  const blank = a && a.blank;
  $("blank-flag").hidden = !blank;
  if (blank) {
    $("blank-flag").textContent = `⚠ This input is blank or nearly so (${a.ink} ink pixels; MNIST digits have about `
      + "150). The model still answers, but its answer says nothing about a digit.";
  }
}

// ------------------------------------------------------------------ analysis: one request in flight, the newest wins

function effectiveLabel() {
  if (state.gradientLabel !== null) return state.gradientLabel;
  return state.source?.kind === "test" ? state.source.label : null;
}

const queue = {waiting: null, running: null};

// Ask for an analysis of `input` (a body, or a function making one when its turn comes, so a drawing is read
// once, when it is sent; default: the pixels shown now). While one request is in flight, a newer input
// replaces the one waiting. An answer is shown only if the input it answers is still the page's input.
function requestAnalysis(input = {pixels: state.pixels.flat()}) {
  queue.waiting = {input, source: state.source};
  if (!queue.running) queue.running = pump().finally(() => { queue.running = null; });
  return queue.running;
}

async function pump() {
  while (queue.waiting) {
    const {input, source} = queue.waiting;
    queue.waiting = null;
    await runAnalysis(typeof input === "function" ? input() : input, source);
  }
}

async function runAnalysis(input, source) {
  const body = {...input, edits: state.edits, label: effectiveLabel(), backward: state.mode === "backward"};
  let result;
  try {
    result = await api("/api/analyze", body);
  } catch (e) {
    setStatus(e.message, true);
    return;
  }
  if (source !== state.source) return;  // the learner has moved on to another picture: its answer is on the way
  state.pixels = result.image;
  state.analysis = result;
  renderPrediction();
  renderInput();
  renderMaps();
  if (!state.drawing) {
    renderGradients();
    if (state.selected) await refreshPanel();
  }
  setStatus(`prediction ${result.prediction}`);
}

function renderPrediction() {
  const {probabilities, prediction} = state.analysis;
  const shown = $("prediction");
  shown.textContent = prediction;
  shown.dataset.prediction = prediction;
  const table = $("probabilities");
  if (table.rows.length !== probabilities.length) {
    table.replaceChildren();
    probabilities.forEach((_, k) => {
      const row = table.insertRow();
      row.insertCell().textContent = k;
      row.insertCell().append(el("div"));
      row.cells[1].className = "bar";
      row.insertCell();
      row.dataset.digit = k;
    });
  }
  probabilities.forEach((p, k) => {
    const row = table.rows[k];
    row.className = k === prediction ? "top" : "";
    row.dataset.probability = p;
    row.cells[1].firstChild.style.width = `${Math.round(p * 100)}%`;
    row.cells[2].textContent = p.toFixed(4);
  });
  table.setAttribute("aria-label", `probabilities; the prediction is ${prediction}`);
}

// The saliency map and the filters' gradients: redrawn when the pen lifts, never while it moves.
function renderGradients() {
  const box = $("input-gradient");
  const t = tensor(state.analysis.input_gradient);
  const scale = scaleFor(t.data, true);
  const source = state.analysis.label_source === "given" ? "label" : "predicted class";
  const canvas = el("canvas", {id: "input-gradient-map", "aria-label": "input gradient map"});
  paint(canvas, 28, 28, 6, (r, c) => t.data[r * 28 + c], scale.colour);
  box.replaceChildren(el("h3", {}, `Input gradient dL/d(pixel) for ${source} ${state.analysis.label} (saliency)`),
    legend(scale, "dL/d(pixel)"), canvas);
  renderFilters();
}

// ------------------------------------------------------------------ filters and kernel gradients

async function loadFilters() {
  state.filters = await api("/api/filters", {edits: state.edits});
  state.filtersVersion += 1;
  renderFilters();
}

// The weights' mosaics change only with an edit, so they are drawn once per /api/filters answer; the kernel
// gradients' mosaics change with every input.
function renderFilters() {
  if (!state.filters || !state.analysis) return;
  const root = $("filters");
  if (root.dataset.drawn !== String(state.filtersVersion)) {
    root.replaceChildren();
    for (const layer of state.filters.layers) {
      const kernel = tensor(layer.kernel);
      const cin = kernel.shape[2];
      const weightScale = scaleFor(kernel.data, true);
        root.append(el("div", {class: "card", dataset: {layer: layer.name}}, el("h3", {}, `${layer.name}: ${layer.what}`),
        el("p", {class: "note"}, cin === 1 ? "One tile per filter, in rows of 8." : "One row per filter, one column per input channel."),
        el("div", {class: "row"}, el("div", {}, legend(weightScale, "weight"), kernelMosaic(kernel, weightScale, zoomOf(kernel)).canvas),
          el("div", {class: "kernel-gradient"}))));
    }
    root.dataset.drawn = String(state.filtersVersion);
  }
  const calls = state.info.layers;
  const drawn = new Set();
  state.analysis.layers.forEach((entry, k) => {
    const name = calls[k].name;
    const holder = root.querySelector(`.card[data-layer="${CSS.escape(name)}"] .kernel-gradient`);
    if (!entry.kernel_gradient || !holder || drawn.has(name)) return;
    drawn.add(name);  // a shared layer's gradient is the same on every call: the sum over them
    const g = tensor(entry.kernel_gradient);
    const gradScale = scaleFor(g.data, true);
    const canvas = holder.querySelector("canvas.mosaic") || undefined;
    const mosaic = kernelMosaic(g, gradScale, zoomOf(g), canvas);
    holder.replaceChildren(legend(gradScale, `dL/d(weight), label ${state.analysis.label}`), mosaic.canvas);
  });
}

function zoomOf(kernel) {
  return kernel.shape[2] === 1 ? 12 : 4;
}

async function applyEdits() {
  const n = state.edits.length;
  $("edit-count").textContent = n ? `${n} kernel weight${n > 1 ? "s" : ""} edited (maps, prediction and filters use the edits).`
    : "No kernel edits.";
  $("reset-edits").hidden = n === 0;
  // The maps keep the colour scales they had before the edit, so untouched maps do not seem to change.
  if (n && !state.frozenScales) {
    state.frozenScales = {};
    for (const block of maps.blocks) if (block.scales) state.frozenScales[block.scaleKey] = block.scales;
  }
  if (!n) state.frozenScales = null;
  $("rescale").hidden = !state.frozenScales;
  await loadFilters();
  await requestAnalysis();
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
  $("run-filters").replaceChildren(legend(scale, "weight (same scale for all epochs)"),
    kernelMosaic(kernel, scale, kernel.shape[2] === 1 ? 12 : 4).canvas);
}

// ------------------------------------------------------------------ start

function setUpControls() {
  const labels = $("gradient-label");
  labels.add(new Option("the test image's label, else the prediction", ""));
  const classes = state.info.layers[state.info.layers.length - 1].output_shape[0];
  for (let k = 0; k < classes; k++) labels.add(new Option(String(k), String(k)));
  labels.addEventListener("change", () => { state.gradientLabel = labels.value === "" ? null : Number(labels.value); requestAnalysis(); });
  for (const radio of document.querySelectorAll("input[name='mode']")) {
    radio.addEventListener("change", () => { state.mode = radio.value; closePanel(false); requestAnalysis(); });
  }
  $("scale-mode").addEventListener("change", (e) => { state.scaleMode = e.target.value; state.frozenScales = null;
    $("rescale").hidden = true; renderMaps(); });
  $("rescale").addEventListener("click", () => { state.frozenScales = null; $("rescale").hidden = true; renderMaps(); });
  $("image-index").addEventListener("change", (e) => showTestImage(e.target.value));
  $("prev-image").addEventListener("click", () => showTestImage(Number($("image-index").value) - 1));
  $("next-image").addEventListener("click", () => showTestImage(Number($("image-index").value) + 1));
  $("random-image").addEventListener("click", () => showTestImage(Math.floor(Math.random() * state.info.test_count)));
  $("next-mistake").addEventListener("click", () => nextMistake(1));
  $("prev-mistake").addEventListener("click", () => nextMistake(-1));
  $("upload").addEventListener("change", (e) => e.target.files[0] && uploadFile(e.target.files[0]));
  $("reset-edits").addEventListener("click", () => { state.edits = []; applyEdits(); });
  $("close-panel").addEventListener("click", closePanel);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && state.selected) { e.preventDefault(); closePanel(); }
  });
}

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
  // On a phone the graph alone picks a layer; the long list waits behind its summary line.
  if (window.matchMedia("(max-width: 900px)").matches) $("layer-details").open = false;
  setUpControls();
  setUpDrawing();
  renderRun();
  await loadFilters();
  await showTestImage(0);
  document.body.dataset.ready = "1";
}

main();
