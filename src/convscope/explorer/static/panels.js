"use strict";
// The panel "one value, step by step": the arithmetic of one output value (forward) or one gradient value
// (backward), with the real numbers from the server, each checked against the model's own value. Values are
// printed at the model's precision (num); a sliding window replays the whole map position by position.

const ROUTES = {
  "cell": "/api/cell", "kernel-gradient": "/api/kernel-gradient", "input-gradient": "/api/input-gradient",
  "pool-gradient": "/api/pool-gradient",
};

async function openPanel(route, body, origin = null, kind = null) {
  state.selected = {route, body, kind};
  state.panelOrigin = origin;
  markSelection();
  await refreshPanel(true);
}

async function refreshPanel(focus = false) {
  const s = state.selected;
  if (!s) return;
  let result;
  try {
    result = await api(ROUTES[s.route], {pixels: state.pixels.flat(), edits: state.edits, label: effectiveLabel(), ...s.body});
  } catch (e) {
    setStatus(e.message, true);
    return;
  }
  if (state.selected !== s) return;  // another value was chosen meanwhile
  state.cell = result;
  renderInput();
  renderPanel(result, focus);
}

// Close the panel; focus goes back to the map it was opened from (unless that map is about to be rebuilt).
function closePanel(returnFocus = true) {
  state.selected = null;
  state.cell = null;
  stopStepper();
  $("cell-panel").classList.remove("open");
  document.body.classList.remove("sheet-open");
  $("cell-body").replaceChildren(el("p", {class: "note"}, "Click a cell of a map, or focus a map and press Enter."));
  markSelection();
  renderInput();
  if (returnFocus && state.panelOrigin && document.contains(state.panelOrigin)) state.panelOrigin.focus();
}

const RENDERERS = {
  conv: renderConv, depthwise: renderConv, transpose: renderTranspose, max: renderPool, mean: renderPool,
  dense: renderDense, merge: renderMerge, concatenate: renderConcatenate, kernel_gradient: renderKernelGradient,
  input_gradient: renderInputGradient, pool_gradient: renderPoolGradient, pool_input_gradient: renderPoolInputGradient,
};

// Draw the panel for `cell`. Opened by the learner (`focus`), the focus moves to its first line, so a screen
// reader reads it and, on a phone, nobody is left on a map under the sheet (Escape goes back to the map);
// redrawn under the learner's hands (an edit, a channel chosen), the focus stays on the same control.
function renderPanel(cell, focus = false) {
  stopStepper();
  const body = $("cell-body");
  const active = document.activeElement;
  const key = active && body.contains(active)
    ? (active.id ? `#${CSS.escape(active.id)}` : active.dataset.index ? `input[data-index="${active.dataset.index}"]` : null)
    : null;
  body.replaceChildren();
  $("cell-panel").classList.add("open");
  document.body.classList.add("sheet-open");
  RENDERERS[cell.kind](body, cell);
  $("cell-panel").setAttribute("aria-label", `Arithmetic of ${cell.layer}`);
  const again = key && body.querySelector(key);
  if (again) {
    again.focus();
  } else if (focus) {
    const first = body.querySelector("p");
    first.tabIndex = -1;
    first.focus({preventScroll: window.matchMedia("(min-width: 901px)").matches});
  }
}

// ------------------------------------------------------------------ small builders

// A table of an (kh, kw[, depth]) tensor's channel `channel`: `cellText(td, value, i, j)` fills each cell.
function table(t, channel, cellText, caption = null) {
  const [kh, kw, depth] = t.shape.length === 3 ? t.shape : [...t.shape, 1];
  const element = el("table", {}, caption ? el("caption", {class: "sr-only"}, caption) : null);
  for (let i = 0; i < kh; i++) {
    const row = element.insertRow();
    for (let j = 0; j < kw; j++) cellText(row.insertCell(), t.data[(i * kw + j) * depth + channel], i, j);
  }
  return element;
}

const numberCell = (td, v) => { td.textContent = num(v); td.dataset.value = v; };

function titled(title, element) {
  return el("div", {class: "titled"}, el("h4", {}, title), el("div", {class: "scroll"}, element));
}

// One line of the equation: `text` with its value in bold (id for tests, exact value in data-value).
function line(parent, text, id, value, extra = "") {
  parent.append(el("div", {}, `${text} `, el("b", {id, dataset: {value}}, num(value)), extra));
}

function verdictLine(parent, result, tracedValue, tracedId, matchId, label, what) {
  const check = verdictText(result, what);
  parent.append(el("div", {}, `${label}: `, el("b", {id: tracedId, dataset: {value: tracedValue}}, num(tracedValue)),
    " ", el("span", {id: matchId, class: check.ok ? "match" : "mismatch"}, check.text)));
}

function heading(body, text, note) {
  body.append(el("p", {}, el("b", {}, text), note ? el("br") : null, note ? el("span", {class: "note"}, note) : null));
}

function receptiveField(body, cell) {
  const field = cell.receptive_field;
  if (!field) return;
  const where = field.whole ? "It depends on the whole input (a layer on the way reads everything)."
    : `It sees input pixels rows ${field.top}-${field.bottom}, cols ${field.left}-${field.right} (outlined in red).`;
  const view = el("canvas", {id: "receptive-field", width: 140, height: 140, "aria-label": "the input with the "
    + "receptive field outlined"});
  body.append(el("p", {class: "note"}, where), view);
  drawInput(view);
}

// A chooser among channels (input channels of a conv, filters of a gradient): options "k: sum", default the
// largest in size; remembers the choice for the same value.
function chooser(body, label, sums, first, key, onChange) {
  let shown = 0;
  sums.forEach((s, k) => { if (Math.abs(s) > Math.abs(sums[shown])) shown = k; });
  if (state.chosen && state.chosen.key === key && state.chosen.k < sums.length) shown = state.chosen.k;
  if (sums.length > 1) {
    const select = el("select", {id: "cell-input-channel", "aria-label": label});
    sums.forEach((s, k) => select.add(new Option(`${first(k)}: ${num(s)}`, k, false, k === shown)));
    select.addEventListener("change", () => { state.chosen = {key, k: Number(select.value)}; onChange(); });
    body.append(el("p", {}, el("label", {}, `${label} `, select), el("span", {class: "note"}, " (its products' sum)")));
  }
  return shown;
}

// ------------------------------------------------------------------ the sliding window

const stepper = {timer: null};

function stopStepper() {
  clearInterval(stepper.timer);
  stepper.timer = null;
}

// Step and play controls over `n` positions, starting at `start`; `draw(k)` shows position k.
function slider(parent, n, start, draw, what) {
  let k = start;
  const text = el("span", {class: "step-text", "aria-live": "polite"});
  const go = (next) => { k = Math.max(0, Math.min(n - 1, next)); draw(k, text); };
  const play = el("button", {type: "button", id: "slide-play"}, "▶ play");
  const toggle = () => {
    if (stepper.timer) { stopStepper(); play.textContent = "▶ play"; return; }
    if (k >= n - 1) go(0);
    play.textContent = "❚❚ pause";
    stepper.timer = setInterval(() => {
      if (k >= n - 1) { stopStepper(); play.textContent = "▶ play"; return; }
      go(k + 1);
    }, Math.max(15, Math.min(120, 6000 / n)));
  };
  play.addEventListener("click", toggle);
  const controls = el("p", {class: "controls stepper", role: "group", "aria-label": `slide the window: ${what}`},
    el("button", {type: "button", id: "slide-start", "aria-label": "first position", onclick: () => go(0)}, "start"),
    el("button", {type: "button", id: "slide-back", "aria-label": "previous position", onclick: () => go(k - 1)}, "◀ step"),
    el("button", {type: "button", id: "slide-next", "aria-label": "next position", onclick: () => go(k + 1)}, "step ▶"),
    play, text);
  parent.append(controls);
  go(start);
}

// The window sliding over the layer's input (one channel, padding drawn grey) and filling its output map.
function slidingWindow(body, cell, inputMap, channel, outputMap, labelOut) {
  const w = cell.window;
  const [H, W, C] = inputMap.shape;
  const [[top, bottom], [left, right]] = w.pads;
  const effH = w.dilation[0] * (w.size[0] - 1) + 1, effW = w.dilation[1] * (w.size[1] - 1) + 1;
  const [Ho, Wo] = outputMap.shape;
  const Hp = H + top + bottom, Wp = W + left + right;
  const inValue = (r, c) => (r < top || c < left || r >= top + H || c >= left + W ? null
    : inputMap.data[((r - top) * W + (c - left)) * C + channel]);
  const inScale = scaleFor(inputMap.data.filter((_, k) => k % C === channel));
  const outScale = scaleFor(outputMap.data);
  const zoomIn = Math.max(3, Math.floor(168 / Math.max(Hp, Wp))), zoomOut = Math.max(3, Math.floor(168 / Math.max(Ho, Wo)));
  const holder = el("div", {class: "row slide"});
  const section = el("div", {class: "card slide-card"}, el("h4", {}, `The window slides: row by row over the layer's input`
    + ` (channel ${cell.input_channels ? cell.input_channels[0] + channel : cell.channel}; grey: padding), filling ${labelOut}`), holder);
  body.append(section);
  const target = cell.row * Wo + cell.col;
  slider(section, Ho * Wo, target, (k, text) => {
    const r = Math.floor(k / Wo), c = k % Wo;
    const mark = {r: r * w.strides[0], c: c * w.strides[1], h: effH, w: effW};
    const filled = (rr, cc) => (rr * Wo + cc <= k ? outputMap.data[rr * Wo + cc] : null);
    holder.replaceChildren(
      titled("input, window outlined", mapPicture(Hp, Wp, zoomIn, inValue, inScale, [mark])),
      titled(`${labelOut}, filled so far`, mapPicture(Ho, Wo, zoomOut, filled, outScale, [{r, c}], NOT_YET)),
    );
    text.textContent = `position ${k + 1} of ${Ho * Wo}: output (${r}, ${c}) = ${num(outputMap.data[k])}`
      + (k === target ? " — the value explained above" : "");
  }, labelOut);
}

// ------------------------------------------------------------------ forward panels

function renderConv(body, cell) {
  const depthwise = cell.kind === "depthwise";
  heading(body, `${cell.layer} (${cell.class_name}), row ${cell.row}, col ${cell.col}, channel ${cell.channel}`,
    `Window ${cell.window.size.join("×")}, stride ${cell.window.strides.join("×")}, dilation ${cell.window.dilation.join("×")}. `
    + (depthwise ? `Depthwise: output channel ${cell.channel} reads input channel ${cell.input_channels[0]} only `
      + `(${cell.depth_multiplier} filter${cell.depth_multiplier > 1 ? "s" : ""} per input channel). ` : "")
    + "The input values are what the previous layer output (pixels scaled to 0-1 for the first layer).");
  receptiveField(body, cell);
  const patch = tensor(cell.patch), kernel = tensor(cell.kernel), products = tensor(cell.products);
  const sums = tensor(cell.channel_sums).data;
  const depth = kernel.shape[2];
  const firstChannel = cell.input_channels[0];
  const shown = chooser(body, "input channel", Array.from(sums), (k) => firstChannel + k, `${cell.layer}/${cell.channel}`,
    () => renderPanel(cell));
  const inside = cell.patch_inside;
  const padCell = (fill) => (td, v, i, j) => { fill(td, v, i, j); if (!inside[i][j]) td.classList.add("pad"); };
  body.append(el("div", {class: "tables"},
    titled(`input patch (channel ${firstChannel + shown}; grey: padding)`, table(patch, shown, padCell(numberCell))),
    titled("× kernel (edit me)", table(kernel, shown, (td, v, i, j) => kernelInput(td, v, [i, j, shown, depthwise ? cell.channel % cell.depth_multiplier : cell.channel], cell.layer_name, depthwise ? firstChannel : null))),
    titled("= products", table(products, shown, numberCell)),
  ));
  const equation = el("div", {class: "equation"});
  body.append(equation);
  const [kh, kw] = kernel.shape;
  const count = depth > 1 ? `${kh * kw * depth} products (${kh}×${kw} over ${depth} input channels)` : `the ${kh * kw} products`;
  line(equation, `sum of ${count} =`, "cell-sum", cell.sum);
  line(equation, "+ bias =", "cell-bias", cell.bias);
  line(equation, "= z =", "cell-z", cell.z);
  verdictLine(equation, {matches: cell.z_matches, ulps: cell.z_ulps, bound: cell.bound}, cell.traced_preactivation,
    "cell-traced-z", "cell-z-match", "the layer's z (trace)", "the layer's z");
  line(equation, `${cell.activation}(z) =`, "cell-output", cell.output);
  verdictLine(equation, cell, cell.traced_output, "cell-traced", "cell-match", "model's forward pass (trace)",
    "the forward pass");
  slidingWindow(body, cell, tensor(cell.input_map), shown, tensor(cell.output_map), "z of this channel");
}

function renderTranspose(body, cell) {
  heading(body, `${cell.layer} (${cell.class_name}), row ${cell.row}, col ${cell.col}, channel ${cell.channel}`,
    `A transposed conv scatters: every input cell (i, j) adds a copy of the kernel, scaled by its value, onto the output `
    + `at (i·${cell.window.strides[0]} + a·${cell.window.dilation[0]} − pad, j·${cell.window.strides[1]} + `
    + `b·${cell.window.dilation[1]} − pad). This output cell gathers the `
    + "taps (a, b) that land on it; a tap whose source would fall between input cells (stride) or outside adds nothing.");
  receptiveField(body, cell);
  const sources = cell.sources;  // [kh][kw][2] as nested lists
  const tapSums = tensor(cell.tap_sums);
  const [kh, kw] = tapSums.shape;
  const taps = el("table", {class: "taps"});
  for (let a = 0; a < kh; a++) {
    const row = taps.insertRow();
    for (let b = 0; b < kw; b++) {
      const td = row.insertCell();
      const [i, j] = sources[a][b];
      if (i < 0) { td.textContent = "—"; td.classList.add("pad"); td.title = "no input cell lands here"; continue; }
      td.append(el("span", {class: "note"}, `x[${i},${j}]·K[${a},${b}]`), el("br"), num(tapSums.data[a * kw + b]));
      td.dataset.value = tapSums.data[a * kw + b];
    }
  }
  body.append(titled(`the ${kh}×${kw} kernel taps: where each came from, and x[i, j, :] · K[a, b, ${cell.channel}, :]`, taps));
  const equation = el("div", {class: "equation"});
  body.append(equation);
  line(equation, "sum of the taps that landed =", "cell-sum", cell.sum);
  line(equation, "+ bias =", "cell-bias", cell.bias);
  line(equation, "= z =", "cell-z", cell.z);
  line(equation, `${cell.activation}(z) =`, "cell-output", cell.output);
  verdictLine(equation, cell, cell.traced_output, "cell-traced", "cell-match", "model's forward pass (trace)",
    "the forward pass");
}

function renderPool(body, cell) {
  const max = cell.kind === "max";
  heading(body, `${cell.layer} (${cell.class_name}), row ${cell.row}, col ${cell.col}, channel ${cell.channel}`,
    `Window ${cell.window.size.join("×")}, stride ${cell.window.strides.join("×")}. Pooling has no weights: it learns `
    + `nothing; it takes the ${max ? "largest" : "mean"} of the window's cells inside the input (padding never counts).`);
  receptiveField(body, cell);
  const patch = {shape: [...cell.window.size], data: tensor(cell.patch).data};
  const inside = cell.patch_inside;
  body.append(titled(`window of the layer's input, channel ${cell.channel}${max ? " (the maximum outlined)" : ""}`,
    table(patch, 0, (td, v, i, j) => {
      numberCell(td, v);
      if (!inside[i][j]) td.classList.add("pad");
      if (max && cell.argmax[0] === i && cell.argmax[1] === j) { td.classList.add("argmax"); td.id = "pool-max"; }
    })));
  const equation = el("div", {class: "equation"});
  body.append(equation);
  line(equation, max ? "max of the window =" : `mean of the ${cell.count} cells inside =`, "cell-output", cell.output);
  verdictLine(equation, cell, cell.traced_output, "cell-traced", "cell-match", "model's forward pass (trace)",
    "the forward pass");
  slidingWindow(body, cell, tensor(cell.input_map), 0, tensor(cell.output_map), `the ${max ? "max" : "mean"} map`);
}

function renderDense(body, cell) {
  const unit = cell.channel;
  const last = state.info.layers[state.info.layers.length - 1].call === cell.layer;
  heading(body, `${cell.layer} (Dense), unit ${unit}${last ? ` (digit ${unit})` : ""}`,
    `z = W x + b: each of the ${cell.inputs} inputs times its weight to unit ${unit}, summed, plus the bias. `
    + `The ${cell.terms.length} largest products are listed; the rest are summed on one line.`);
  const terms = el("table", {class: "terms"}, el("thead", {}, el("tr", {}, el("th", {}, "i"), el("th", {}, "x[i]"),
    el("th", {}, `W[i, ${unit}]`), el("th", {}, "product"))));
  const tbody = el("tbody");
  for (const t of cell.terms) {
    tbody.append(el("tr", {}, el("td", {}, String(t.i)), el("td", {}, num(t.x)), el("td", {}, num(t.w)),
      el("td", {dataset: {value: t.product}}, num(t.product))));
  }
  terms.append(tbody);
  body.append(titled("the largest products", terms));
  const equation = el("div", {class: "equation"});
  body.append(equation);
  line(equation, `+ the other ${cell.rest_count} products (${cell.zeros} inputs are exactly 0) =`, "dense-rest", cell.rest_sum);
  line(equation, `sum of all ${cell.inputs} products =`, "cell-sum", cell.sum);
  line(equation, "+ bias =", "cell-bias", cell.bias);
  line(equation, "= z =", "cell-z", cell.z);
  verdictLine(equation, {matches: cell.z_matches, ulps: cell.z_ulps, bound: cell.bound}, cell.traced_preactivation,
    "cell-traced-z", "cell-z-match", "the layer's z (trace)", "the layer's z");
  if (!cell.softmax) {
    line(equation, `${cell.activation}(z) =`, "cell-output", cell.output);
    verdictLine(equation, cell, cell.traced_output, "cell-traced", "cell-match", "model's forward pass (trace)", "the forward pass");
    return;
  }
  softmaxLines(body, cell, unit);
}

// p_k = exp(z_k) / sum_j exp(z_j) for every unit, the chosen unit's line, and the check against the model.
function softmaxLines(body, cell, unit) {
  const sm = cell.softmax;
  const shifted = sm.shift ? ` − ${num(sm.shift)}` : "";
  body.append(el("p", {}, el("b", {}, "Softmax"), el("br"), el("span", {class: "note"},
    `p_k = exp(z_k${shifted}) / Σ_j exp(z_j${shifted}): every unit's z (from the forward pass) goes through exp, `
    + `and each is divided by their sum, so the ${sm.p.length} numbers are positive and add up to 1.`
    + (sm.shift ? " The z are shifted by the largest first, which changes no p_k and keeps exp from overflowing." : ""))));
  const softmax = el("table", {class: "terms", id: "softmax-table"}, el("thead", {}, el("tr", {},
    el("th", {}, "k"), el("th", {}, "z_k"), el("th", {}, `exp(z_k${shifted})`), el("th", {}, "p_k"), el("th", {}, "model's p_k"))));
  const rows = el("tbody");
  sm.p.forEach((p, k) => {
    rows.append(el("tr", {class: k === unit ? "chosen" : ""}, el("td", {}, String(k)), el("td", {}, num(sm.z[k])),
      el("td", {}, num(sm.exp[k])), el("td", {id: `softmax-p-${k}`, dataset: {value: p}}, num(p)),
      el("td", {dataset: {value: sm.traced_p[k]}}, num(sm.traced_p[k]))));
  });
  softmax.append(rows);
  body.append(titled("exp, sum, divide", softmax));
  const tail = el("div", {class: "equation"});
  body.append(tail);
  line(tail, `Σ exp =`, "softmax-total", sm.total);
  line(tail, `p_${unit} = exp(z_${unit}${shifted}) / Σ =`, "cell-output", cell.output);
  verdictLine(tail, cell, cell.traced_output, "cell-traced", "cell-match", "the model's probability (trace)",
    "the prediction");
}

function renderSoftmaxLayer(body, cell) {
  const unit = cell.unit;
  const last = state.info.layers[state.info.layers.length - 1].call === cell.layer;
  heading(body, `${cell.layer} (${cell.class_name}), entry ${unit}${last ? ` (digit ${unit})` : ""}`,
    "A softmax layer has no weights: it turns the values it receives (the previous layer's z) into probabilities.");
  softmaxLines(body, cell, unit);
}

function renderActivation(body, cell) {
  const where = cell.index.length === 3 ? `row ${cell.index[0]}, col ${cell.index[1]}, channel ${cell.index[2]}` : `entry ${cell.index[0]}`;
  heading(body, `${cell.layer} (${cell.class_name}), ${where}`,
    `An activation layer applies ${cell.function} to every element of its input on its own: the same cell in, `
    + "the same cell out; no weights, nothing shared between cells.");
  const equation = el("div", {class: "equation"});
  body.append(equation);
  line(equation, `x (from ${cell.inbound.join(", ")}) =`, "activation-x", cell.x);
  line(equation, `${cell.function}(x) =`, "cell-output", cell.output);
  verdictLine(equation, cell, cell.traced_output, "cell-traced", "cell-match", "model's forward pass (trace)", "the forward pass");
}

function renderMerge(body, cell) {
  const where = cell.index.length === 3 ? `row ${cell.index[0]}, col ${cell.index[1]}, channel ${cell.index[2]}` : `entry ${cell.index[0]}`;
  heading(body, `${cell.layer} (${cell.class_name}), ${where}`,
    `${cell.class_name} combines its ${cell.inputs.length} inputs cell by cell: the same position of each, no weights. `
    + "Gradients go back to every input (for Add: unchanged to each).");
  const t = el("table", {class: "terms"}, el("thead", {}, el("tr", {}, el("th", {}, "from"), el("th", {}, "value"))));
  const rows = el("tbody");
  cell.inputs.forEach((name, k) => rows.append(el("tr", {}, el("td", {}, name),
    el("td", {id: `merge-value-${k}`, dataset: {value: cell.values[k]}}, num(cell.values[k])))));
  t.append(rows);
  body.append(titled("where each number came from", t));
  const equation = el("div", {class: "equation"});
  body.append(equation);
  const op = cell.operation;
  const formula = ["+", "−", "×"].includes(op) ? cell.inputs.join(` ${op} `) : `${op}(${cell.inputs.join(", ")})`;
  line(equation, `${formula} =`, "cell-output", cell.output);
  verdictLine(equation, cell, cell.traced_output, "cell-traced", "cell-match", "model's forward pass (trace)", "the forward pass");
}

function renderConcatenate(body, cell) {
  heading(body, `${cell.layer} (Concatenate), index [${cell.index.join(", ")}]`,
    `Concatenate stacks its inputs along axis ${cell.axis}: ${cell.inputs.map((n, k) => `${n} (${cell.sizes[k]})`).join(" then ")}. `
    + "Nothing is computed: each output number is a copy of one input number.");
  body.append(el("p", {id: "concat-source"}, `This number is ${cell.source}[${cell.source_index.join(", ")}].`));
  const equation = el("div", {class: "equation"});
  body.append(equation);
  line(equation, `${cell.source}[${cell.source_index.join(", ")}] =`, "cell-output", cell.output);
  verdictLine(equation, cell, cell.traced_output, "cell-traced", "cell-match", "model's forward pass (trace)", "the forward pass");
}

// ------------------------------------------------------------------ backward panels

function labelNote(cell) {
  return `Gradients of the cross-entropy loss for label ${cell.label}.`;
}

function renderKernelGradient(body, cell) {
  const [i, j, c, f] = cell.index;
  const [sh, sw] = cell.window.strides, [dh, dw] = cell.window.dilation;
  heading(body, `${cell.layer}: dL/dK[${i}, ${j}, ${c}, ${f}]`,
    `${labelNote(cell)} Weight (${i}, ${j}) of filter ${f} on input channel ${cell.input_channel} multiplies, at every `
    + `output position (r, q), the input value x_pad[${affine(sh, "r", dh * i)}, ${affine(sw, "q", dw * j)}]. So its gradient is the sum, `
    + "over every position, of that input value times dL/dz there: the correlation of the input with dL/dz.");
  const padded = tensor(cell.padded_input), g = tensor(cell.gradient_map), seen = tensor(cell.seen);
  const products = tensor(cell.products);
  const [Hp, Wp] = padded.shape, [Ho, Wo] = g.shape;
  const zoomIn = Math.max(3, Math.floor(168 / Math.max(Hp, Wp))), zoomOut = Math.max(3, Math.floor(168 / Math.max(Ho, Wo)));
  const inScale = scaleFor(padded.data), gScale = scaleFor(g.data, true), pScale = scaleFor(products.data, true);
  const holder = el("div", {class: "row slide"});
  const card = el("div", {class: "card slide-card"}, el("h4", {}, "The sum, position by position (the window of the"
    + " kernel gradient slides like the forward pass's)"), holder);
  const running = [];
  let total = 0;
  for (let k = 0; k < products.data.length; k++) { total += products.data[k]; running.push(total); }
  body.append(card);
  slider(card, Ho * Wo, Ho * Wo - 1, (k, text) => {
    const r = Math.floor(k / Wo), q = k % Wo;
    holder.replaceChildren(
      titled(`input channel ${cell.input_channel} (padded)`, mapPicture(Hp, Wp, zoomIn, (y, x) => padded.data[y * Wp + x],
        inScale, [{r: sh * r + dh * i, c: sw * q + dw * j}])),
      titled(`dL/dz, filter ${cell.output_channel}`, mapPicture(Ho, Wo, zoomOut, (y, x) => g.data[y * Wo + x], gScale, [{r, c: q}])),
      titled("products so far", mapPicture(Ho, Wo, zoomOut, (y, x) => (y * Wo + x <= k ? products.data[y * Wo + x] : null),
        pScale, [{r, c: q}], NOT_YET)),
    );
    text.textContent = `position (${r}, ${q}): x = ${num(seen.data[k])}, dL/dz = ${num(g.data[k])}, product `
      + `${num(products.data[k])}; running sum ${num(running[k])}`;
  }, "the kernel-gradient sum");
  const list = el("table", {class: "terms"}, el("thead", {}, el("tr", {}, el("th", {}, "(r, q)"), el("th", {}, "x"),
    el("th", {}, "dL/dz"), el("th", {}, "product"))));
  const rows = el("tbody");
  for (let k = 0; k < products.data.length; k++) {
    rows.append(el("tr", {}, el("td", {}, `(${Math.floor(k / Wo)}, ${k % Wo})`), el("td", {}, num(seen.data[k])),
      el("td", {}, num(g.data[k])), el("td", {}, num(products.data[k]))));
  }
  list.append(rows);
  body.append(el("details", {}, el("summary", {}, `all ${products.data.length} products`), el("div", {class: "scroll tall"}, list)));
  const equation = el("div", {class: "equation"});
  body.append(equation);
  line(equation, `sum of the ${products.data.length} products =`, "grad-this-call", cell.this_call_sum);
  for (const other of cell.others) line(equation, `+ the same sum for this layer's call ${other.call} =`, "", other.sum);
  line(equation, "dL/dK =", "grad-sum", cell.sum);
  verdictLine(equation, cell, cell.traced, "grad-traced", "grad-match", "the layer's own dL/dK (trace)",
    "the layer's gradient");
}

// "2r + 1", "r", "q + 2": an index written as a learner would.
function affine(scale, name, offset) {
  const term = scale === 1 ? name : `${scale}${name}`;
  return offset ? `${term} + ${offset}` : term;
}

function renderInputGradient(body, cell) {
  const [a, b, c] = cell.index;
  const w = cell.window;
  const [kh, kw] = w.size;
  heading(body, `${cell.layer}: dL/dx[${a}, ${b}, ${c}] (the gradient at the layer's input)`,
    `${labelNote(cell)} dL/dx is the full convolution of dL/dz with the kernel rotated by 180 degrees: the window `
    + "reaches past dL/dz's edges (grey: padding). "
    + (w.strides.some((s) => s > 1) ? `With stride ${w.strides.join("×")}, dL/dz is first dilated: stride − 1 zeros `
      + "between its cells (the italic zeros below), as the backprop lesson says." : "With stride 1 nothing is inserted."));
  const values = tensor(cell.gradient_window), rotated = tensor(cell.rotated_kernel), products = tensor(cell.products);
  const sums = Array.from(tensor(cell.filter_sums).data);
  const shown = chooser(body, "filter", sums, (k) => cell.filters[k], `${cell.layer}/dx/${cell.index.join(",")}`, () => renderPanel(cell));
  const dilated = tensor(cell.dilated_gradient);
  const [Hd, Wd, F] = dilated.shape;
  const effH = w.dilation[0] * (kh - 1) + 1, effW = w.dilation[1] * (kw - 1) + 1;
  body.append(titled(`dL/dz of filter ${cell.filters[shown]}, dilated by the stride and padded; the window for input cell (${a}, ${b})`,
    mapPicture(Hd, Wd, Math.max(3, Math.floor(196 / Math.max(Hd, Wd))), (r, q) => dilated.data[(r * Wd + q) * F + shown],
      scaleFor(dilated.data, true), [{r: a, c: b, h: effH, w: effW}])));
  const status = cell.status;
  body.append(el("div", {class: "tables"},
    titled("dL/dz under the window", table(values, shown, (td, v, i, j) => {
      numberCell(td, v);
      if (status[i][j] === "pad") td.classList.add("pad");
      if (status[i][j] === "stride") td.classList.add("inserted");
    })),
    titled("× kernel rotated 180°", table(rotated, shown, numberCell)),
    titled("= products", table(products, shown, numberCell)),
  ));
  const equation = el("div", {class: "equation"});
  body.append(equation);
  line(equation, `sum for filter ${cell.filters[shown]} =`, "grad-filter-sum", sums[shown]);
  line(equation, `sum over all ${sums.length} filters that read channel ${c} =`, "grad-sum", cell.sum);
  verdictLine(equation, cell, cell.traced, "grad-traced", "grad-match", "the layer's own dL/dx (trace)",
    "the layer's gradient");
}

function renderPoolGradient(body, cell) {
  const [r, q, c] = cell.index;
  const max = cell.pool === "max";
  heading(body, `${cell.layer}: where dL/dy[${r}, ${q}, ${c}] goes`,
    `${labelNote(cell)} ` + (max ? "Max pooling passed on only the window's largest value, so its gradient goes to "
      + "that cell alone (the first one, if several are equal); the others get 0."
      : `Average pooling gave each of the ${cell.count} cells inside the window the same weight 1/${cell.count}, so each `
      + "gets the same share of the gradient."));
  const size = {shape: [...cell.window.size]};
  const inside = cell.patch_inside;
  const mark = (td, i, j) => {
    if (!inside[i][j]) td.classList.add("pad");
    if (max && cell.argmax[0] === i && cell.argmax[1] === j) td.classList.add("argmax");
  };
  body.append(el("div", {class: "tables"},
    titled("the window (input values)", table({...size, data: tensor(cell.patch).data}, 0, (td, v, i, j) => {
      numberCell(td, v); mark(td, i, j);
      if (max && cell.argmax[0] === i && cell.argmax[1] === j) td.id = "pool-max";
    })),
    titled("gradient sent to each cell", table({...size, data: tensor(cell.routed).data}, 0, (td, v, i, j) => {
      numberCell(td, v); mark(td, i, j);
    })),
    titled("the layer's dL/dx there (trace)", table({...size, data: tensor(cell.traced_dx).data}, 0, (td, v, i, j) => {
      numberCell(td, v); mark(td, i, j);
    })),
  ));
  const equation = el("div", {class: "equation"});
  body.append(equation);
  line(equation, "dL/dy at this output cell =", "pool-dy", cell.dy);
  if (!max) line(equation, `÷ ${cell.count} =`, "pool-share", cell.dy / cell.count);
  const verdict = cell.overlapping ? {ok: false, text: "windows overlap here: a cell's dL/dx adds the shares of every "
    + "window that reads it"} : cell.matches ? {ok: true, text: "✓ exactly what the layer's backward pass sent"}
    : {ok: false, text: "✗ differs from the layer's backward pass"};
  equation.append(el("div", {id: "grad-match", class: verdict.ok ? "match" : "mismatch"}, verdict.text));
}

function renderPoolInputGradient(body, cell) {
  const [a, b, c] = cell.index;
  heading(body, `${cell.layer}: dL/dx[${a}, ${b}, ${c}]`, `${labelNote(cell)} An input cell of a pooling layer receives `
    + "a share from every window that reads it (from max pooling: only where it was the maximum).");
  const t = el("table", {class: "terms"}, el("thead", {}, el("tr", {}, el("th", {}, "window (output cell)"), el("th", {}, "share"))));
  const rows = el("tbody");
  for (const s of cell.shares) rows.append(el("tr", {}, el("td", {}, `(${s.window.join(", ")})`), el("td", {}, num(s.share))));
  if (!cell.shares.length) rows.append(el("tr", {}, el("td", {colspan: 2}, "no window sends anything here")));
  t.append(rows);
  body.append(titled("shares", t));
  const equation = el("div", {class: "equation"});
  body.append(equation);
  line(equation, "sum of the shares =", "grad-sum", cell.sum);
  verdictLine(equation, cell, cell.traced, "grad-traced", "grad-match", "the layer's own dL/dx (trace)", "the layer's gradient");
}

// A kernel weight as an input box: editing it re-runs the model on a copy with the edit (the file never changes).
function kernelInput(td, value, index, layer, depthwiseChannel) {
  const kernelIndex = depthwiseChannel === null ? index : [index[0], index[1], depthwiseChannel, index[3]];
  const input = el("input", {type: "number", step: "any", value: num(value), dataset: {index: kernelIndex.join(",")},
    "aria-label": `kernel weight ${kernelIndex.join(", ")}`});
  const same = (e) => e.layer === layer && e.index.join(",") === kernelIndex.join(",");
  if (state.edits.some(same)) input.classList.add("edited");
  input.addEventListener("change", async () => {
    const v = Number(input.value);
    if (input.value.trim() === "" || !Number.isFinite(v)) { input.value = num(value); return; }
    state.edits = state.edits.filter((e) => !same(e));
    state.edits.push({layer, index: kernelIndex, value: v});
    await applyEdits();
  });
  td.append(input);
}
