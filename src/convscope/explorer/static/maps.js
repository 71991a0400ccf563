"use strict";
// The maps section: every layer call's maps (forward) or gradients (backward), repainted in place while the
// learner draws; every map and kernel mosaic is a keyboard grid (arrows move the cell, Enter opens its
// arithmetic, Page Up / Page Down step through the channels).

const MAP_TILE = 78;   // screen pixels a feature-map tile aims for
const VECTOR_COLUMNS = 40;

const maps = {key: null, blocks: []};  // the built blocks, repainted while their structure stays the same

// The blocks of maps one call shows in the current mode: [{kind, title, t, route}], route = the panel a click opens.
function blocksOf(entry, layer) {
  const blocks = [];
  const activation = layer.activation || "activation";
  const forwardRoute = layer.explained ? "cell" : null;
  const backward = state.mode === "backward";
  if (entry.preactivation && !backward) {
    blocks.push({kind: "preactivation", title: `z before ${activation} (z = sum of products + bias)`,
      t: tensor(entry.preactivation), route: forwardRoute, label: "z"});
  }
  const title = entry.preactivation ? `output, after ${activation}` : "output";
  blocks.push({kind: "output", title, t: tensor(entry.output), route: forwardRoute, label: "value"});
  if (!backward || !entry.grad_output) return blocks;
  if (layer.backward === "conv") {
    blocks.push({kind: "grad_preactivation", title: "dL/dz: the loss's gradient at this layer's z",
      t: tensor(entry.grad_preactivation || entry.grad_output), route: null, label: "dL/dz", signed: true});
    if (entry.kernel_gradient) {
      blocks.push({kind: "kernel_gradient", title: "dL/dK: one number per kernel weight (click one: the correlation"
        + " that makes it)", t: tensor(entry.kernel_gradient), route: "kernel-gradient", label: "dL/dK", signed: true});
    }
    if (entry.grad_input) {
      blocks.push({kind: "grad_input", title: "dL/dx: the gradient sent back to this layer's input (click a cell: "
        + "the full convolution that makes it)", t: tensor(entry.grad_input), route: "input-gradient",
        label: "dL/dx", signed: true});
    }
  } else if (layer.backward === "pool") {
    blocks.push({kind: "grad_output", title: "dL/dy: the gradient arriving at this layer's output (click a cell: "
      + "where it goes)", t: tensor(entry.grad_output), route: "pool-gradient", label: "dL/dy", signed: true});
    if (entry.grad_input) {
      blocks.push({kind: "grad_input", title: "dL/dx: what each input cell receives", t: tensor(entry.grad_input),
        route: "input-gradient", label: "dL/dx", signed: true});
    }
  } else {
    blocks.push({kind: "grad_output", title: "dL/dy: the gradient arriving at this layer's output",
      t: tensor(entry.grad_output), route: null, label: "dL/dy", signed: true});
  }
  return blocks;
}

function renderMaps() {
  const calls = state.info.layers;
  const all = state.analysis.layers.map((entry, k) => blocksOf(entry, calls[k]));
  const key = [state.mode, state.scaleMode, ...all.map((blocks, k) => `${calls[k].call}:`
    + blocks.map((b) => `${b.kind}${b.t.shape.join("x")}`).join(","))].join("|");
  if (key !== maps.key) build(all);
  maps.key = key;
  maps.blocks.forEach((block, k) => repaint(block, all[block.position][block.index]));
}

function build(all) {
  const root = $("maps");
  root.replaceChildren();
  maps.blocks = [];
  maps.width = root.clientWidth;
  state.analysis.layers.forEach((entry, position) => {
    const layer = state.info.layers[position];
    const inputs = layer.inbound.length ? ` ← ${layer.inbound.join(", ")}` : "";
    const section = el("section", {class: "layer-maps", id: `maps-${layer.call}`, "aria-label": `layer ${layer.call}`},
      el("h3", {}, `${layer.call} (${layer.class_name})${inputs} — output ${layer.output_shape.join(" × ")}`));
    all[position].forEach((block, index) => {
      const built = buildBlock(layer, block);
      Object.assign(built, {position, index});
      maps.blocks.push(built);
      section.append(built.wrap);
    });
    root.append(section);
  });
}

const SHEET_GAP = 3, SHEET_BAND = 11;  // canvas pixels between maps, and below each row of maps for its number

// One block of maps is ONE canvas (a sheet of tiles, or a strip for a vector): a page of hundreds of small
// canvases costs the browser a fraction of a millisecond per canvas in every frame, drawing or not.
function buildBlock(layer, block) {
  const {shape} = block.t;
  const hover = el("div", {class: "hover", "aria-live": "polite"});
  const legendHolder = el("div", {class: "legend-line"});
  const grid = el("div", {class: "map-grid"});
  const wrap = el("div", {class: "block", dataset: {kind: block.kind}}, el("div", {class: "block-title"}, block.title),
    legendHolder, grid, hover);
  const built = {wrap, grid, hover, legendHolder, layer, kind: block.kind, block};
  if (block.kind === "kernel_gradient") return built;  // a mosaic, drawn by repaint
  const canvas = el("canvas", {dataset: {layer: layer.call, kind: block.kind}});
  grid.append(el("figure", {class: "sheet"}, canvas));
  built.canvas = canvas;
  if (shape.length === 1) {
    const n = shape[0], cols = Math.min(VECTOR_COLUMNS, n), rows = Math.ceil(n / cols);
    const zoom = n <= 10 ? 28 : 8;
    canvas.width = cols * zoom; canvas.height = rows * zoom;
    canvas.style.width = `${cols * zoom}px`;
    Object.assign(canvas.dataset, {length: n, zoom});
    if (n <= 10 && layer.call === state.info.layers[state.info.layers.length - 1].call) {
      // The model's output: one box per class, labelled with its digit.
      const labels = el("div", {class: "digit-labels", "aria-hidden": "true"},
        ...Array.from({length: n}, (_, k) => el("span", {}, String(k))));
      labels.querySelectorAll("span").forEach((x) => { x.style.width = `${zoom}px`; });
      grid.firstChild.append(labels);
    }
    built.paintAll = (data, scales) => {
      const ctx = canvas.getContext("2d");
      const image = ctx.createImageData(canvas.width, canvas.height);
      fillCells(image, 0, 0, rows, cols, zoom, (r, c) => (r * cols + c < n ? data[r * cols + c] : null), scales[0].colour);
      ctx.putImageData(image, 0, 0);
    };
    navigation(built, canvas, block, {
      maps: 1, h: rows, w: cols, valid: (ch, r, c) => r * cols + c < n,
      box: (ch, r, c) => ({x: c * zoom, y: r * zoom, w: zoom, h: zoom}),
      at: (x, y) => [0, Math.min(rows - 1, Math.floor(y / zoom)), Math.min(cols - 1, Math.floor(x / zoom))],
      cellOf: (ch, r, c) => ({text: `${layer.call}[${r * cols + c}]`, index: r * cols + c,
        body: {layer: layer.call, unit: r * cols + c}}),
    });
    return built;
  }
  const [h, w, channels] = shape;
  const zoom = Math.max(2, Math.floor(MAP_TILE / h));
  const tileW = w * zoom + SHEET_GAP, tileH = h * zoom + SHEET_BAND;
  const cols = Math.max(1, Math.min(channels, Math.floor((maps.width - 8 + SHEET_GAP) / tileW)));
  const rows = Math.ceil(channels / cols);
  canvas.width = cols * tileW - SHEET_GAP; canvas.height = rows * tileH;
  canvas.style.width = `${canvas.width}px`;
  Object.assign(canvas.dataset, {channels, height: h, width: w, zoom, cols, gap: SHEET_GAP, band: SHEET_BAND});
  const origin = (ch) => [(ch % cols) * tileW, Math.floor(ch / cols) * tileH];
  built.paintAll = (data, scales) => {
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(canvas.width, canvas.height);
    for (let ch = 0; ch < channels; ch++) {
      const [x0, y0] = origin(ch);
      const colour = (scales[ch] || scales[0]).colour;
      fillCells(image, x0, y0, h, w, zoom, (r, c) => data[(r * w + c) * channels + ch], colour);
    }
    ctx.putImageData(image, 0, 0);
    ctx.fillStyle = "#5b6570"; ctx.font = "9px system-ui, sans-serif";
    for (let ch = 0; ch < channels; ch++) {
      const [x0, y0] = origin(ch);
      ctx.fillText(`#${ch}`, x0, y0 + h * zoom + 9);
    }
  };
  navigation(built, canvas, block, {
    maps: channels, h, w, valid: () => true,
    box: (ch, r, c) => { const [x0, y0] = origin(ch); return {x: x0 + c * zoom, y: y0 + r * zoom, w: zoom, h: zoom}; },
    at: (x, y) => {
      const tx = Math.floor(x / tileW), ty = Math.floor(y / tileH), ch = ty * cols + tx;
      const c = Math.floor((x - tx * tileW) / zoom), r = Math.floor((y - ty * tileH) / zoom);
      return tx < cols && ch < channels && r < h && c < w ? [ch, r, c] : null;
    },
    cellOf: (ch, r, c) => ({text: `${layer.call} ${block.label} [row ${r}, col ${c}, channel ${ch}]`,
      index: (r * w + c) * channels + ch, body: {layer: layer.call, row: r, col: c, channel: ch}}),
  });
  built.tileBox = (ch) => { const [x0, y0] = origin(ch); return {x: x0, y: y0, w: w * zoom, h: h * zoom}; };
  return built;
}

// Keys, mouse and focus for one block's canvas: `geometry` has `maps` maps of h x w cells, `valid`, `box` (a
// cell's rectangle in canvas pixels), `at` (canvas pixel -> [map, row, col] or null) and `cellOf` (the hover
// text, the index into the block's data and the body of the request for the cell's arithmetic).
function navigation(built, canvas, block, geometry) {
  const {maps: count, h, w, valid, box, at, cellOf} = geometry;
  canvas.tabIndex = 0;
  canvas.setAttribute("role", "img");
  const action = block.route ? "Enter shows its arithmetic" : "Enter reads its value";
  canvas.setAttribute("aria-label", `${built.layer.call}, ${block.title}: ${count > 1 ? `${count} maps of ` : ""}`
    + `${h} by ${w} cells. Arrow keys move the cell, ${action}`
    + (count > 1 ? ", Page Down and Page Up move to the next or previous map." : "."));
  canvas.cursor = [0, 0, 0];
  const show = (cell, mark) => {
    const {text, index} = cellOf(...cell);
    built.hover.textContent = `${text} = ${num(built.current.data[index])}` + (block.route ? " — Enter or click for its arithmetic" : "");
    if (mark) marker(canvas, box(...cell), "cursor");
  };
  const open = (cell) => {
    if (!valid(...cell)) return;
    if (block.route) openPanel(block.route, cellOf(...cell).body, canvas, block.kind);
    else show(cell, true);
  };
  const cellAt = (e) => at(Math.floor(e.offsetX * canvas.width / canvas.clientWidth),
    Math.floor(e.offsetY * canvas.height / canvas.clientHeight));
  canvas.addEventListener("mousemove", (e) => {
    const cell = cellAt(e);
    if (cell && valid(...cell)) show(cell, false);
  });
  if (block.route) {
    canvas.classList.add("clickable");
    canvas.addEventListener("click", (e) => {
      const cell = cellAt(e);
      if (cell && valid(...cell)) { canvas.cursor = cell; show(cell, true); open(cell); }
    });
  }
  canvas.addEventListener("focus", () => show(canvas.cursor, true));
  canvas.addEventListener("blur", () => canvas.parentElement.querySelector(".cursor")?.remove());
  canvas.addEventListener("keydown", (e) => {
    const [ch, r, c] = canvas.cursor;
    const moves = {ArrowUp: [0, -1, 0], ArrowDown: [0, 1, 0], ArrowLeft: [0, 0, -1], ArrowRight: [0, 0, 1],
      PageDown: [1, 0, 0], PageUp: [-1, 0, 0]};
    if (moves[e.key]) {
      const [dm, dr, dc] = moves[e.key];
      const next = [Math.min(count - 1, Math.max(0, ch + dm)), Math.min(h - 1, Math.max(0, r + dr)),
        Math.min(w - 1, Math.max(0, c + dc))];
      if (valid(...next)) canvas.cursor = next;
      show(canvas.cursor, true);
    } else if (e.key === "Enter" || e.key === " ") {
      open(canvas.cursor);
    } else {
      return;
    }
    e.preventDefault();
  });
}

// A box over part of a canvas (given in canvas pixels), placed over the canvas as shown: the keyboard cursor,
// or the outline of the map the panel explains.
function marker(canvas, cell, kind) {
  const figure = canvas.parentElement;
  let box = figure.querySelector(`.${kind}`);
  if (!box) { box = el("div", {class: kind, "aria-hidden": "true"}); figure.append(box); }
  const kx = canvas.clientWidth / canvas.width, ky = canvas.clientHeight / canvas.height;
  box.style.left = `${canvas.offsetLeft + cell.x * kx}px`; box.style.top = `${canvas.offsetTop + cell.y * ky}px`;
  box.style.width = `${Math.max(3, cell.w * kx)}px`; box.style.height = `${Math.max(3, cell.h * ky)}px`;
}

// The colour scale of a block (or of one of its maps), kept from before a kernel edit when there is one.
function blockScales(built, block) {
  const key = `${built.layer.call}/${built.kind}`;
  const {shape, data} = block.t;
  const frozen = state.frozenScales && state.frozenScales[key];
  let scales;
  if (frozen) {
    scales = frozen;
  } else if (state.scaleMode === "map" && shape.length === 3) {
    const [h, w, channels] = shape;
    scales = [];
    for (let ch = 0; ch < channels; ch++) {
      const values = new Float32Array(h * w);
      for (let k = 0; k < h * w; k++) values[k] = data[k * channels + ch];
      scales.push(scaleFor(values, block.signed));
    }
  } else {
    scales = [scaleFor(data, block.signed)];
  }
  built.scales = scales;
  built.scaleKey = key;
  return {scales, frozen: Boolean(frozen)};
}

function repaint(built, block) {
  built.current = block.t;
  const {scales, frozen} = blockScales(built, block);
  const note = frozen ? " — kept from before your edit" : "";
  if (block.kind === "kernel_gradient") {
    repaintMosaic(built, block, scales[0], note);
    return;
  }
  built.legendHolder.replaceChildren(scales.length === 1 ? legend(scales[0], block.label, note)
    : el("span", {class: "legend"}, `${block.label}: one colour scale per map (hover for values)${note}`));
  built.paintAll(block.t.data, scales);
  markSelection();
}

// A kernel (kh, kw, in, out) as one mosaic: first layers one tile per filter in rows of 8; deeper layers one row
// per filter and one column per input channel. Each weight is `zoom` x `zoom` canvas pixels and tiles are parted
// by one grey pixel. Returns the canvas and `weightAt(row, col)` on the grid of weights (gaps left out).
function kernelMosaic(t, scale, zoom, canvas = el("canvas", {class: "mosaic"})) {
  const [kh, kw, cin, cout] = t.shape;
  const at = (i, j, c, f) => t.data[((i * kw + j) * cin + c) * cout + f];
  const th = kh * zoom + 1, tw = kw * zoom + 1;  // a tile and its gap
  const first = cin === 1;
  const cols = first ? Math.min(8, cout) : cin, rows = first ? Math.ceil(cout / cols) : cout;
  const weightAt = (gr, gc) => {  // (row, col) on the grid of weights -> [i, j, c, f], or null past the last filter
    const row = Math.floor(gr / kh), col = Math.floor(gc / kw), i = gr % kh, j = gc % kw;
    if (!first) return [i, j, col, row];
    const f = row * cols + col;
    return f < cout ? [i, j, 0, f] : null;
  };
  // Weight by weight (not pixel by pixel): a zoom x zoom square each, on a grey ground that shows as the gaps.
  const height = rows * th - 1, width = cols * tw - 1;
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  canvas.style.width = `${width}px`;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(width, height);
  fillCells(image, 0, 0, height, width, 1, () => null, scale.colour);
  for (let row = 0; row < rows; row++) {
    for (let col = 0; col < cols; col++) {
      const index = weightAt(row * kh, col * kw);
      if (index === null) continue;
      const [, , c, f] = index;
      fillCells(image, col * tw, row * th, kh, kw, zoom, (i, j) => at(i, j, c, f), scale.colour);
    }
  }
  ctx.putImageData(image, 0, 0);
  canvas.title = first ? `${cout} filters (rows of ${cols}), each ${kh}x${kw}`
    : `one row per filter (${cout}), one column per input channel (${cin})`;
  return {canvas, weightAt, rows: rows * kh, cols: cols * kw, at, geometry: {kh, kw, th, tw, zoom}};
}

function repaintMosaic(built, block, scale, note) {
  const [kh, kw, cin, cout] = block.t.shape;
  const zoom = cin === 1 ? 12 : 4;
  built.legendHolder.replaceChildren(legend(scale, block.label, note));
  if (built.canvas) {  // the same kernel's new gradients: repaint in place, keeping focus and listeners
    kernelMosaic(block.t, scale, zoom, built.canvas);
    markSelection();
    return;
  }
  const mosaic = kernelMosaic(block.t, scale, zoom);
  const canvas = mosaic.canvas;
  Object.assign(canvas.dataset, {layer: built.layer.call, kind: "kernel_gradient", zoom, kh, kw});
  built.grid.replaceChildren(el("figure", {class: "sheet"}, canvas));
  built.canvas = canvas;
  const {th, tw} = mosaic.geometry;
  const first = cin === 1;
  built.weightBox = ([i, j, c, f]) => {  // the inverse of weightAt: where weight [i, j, c, f] sits
    const [row, col] = first ? [Math.floor(f / 8), f % 8] : [f, c];
    return {x: col * tw + j * zoom, y: row * th + i * zoom, w: zoom, h: zoom};
  };
  navigation(built, canvas, block, {
    maps: 1, h: mosaic.rows, w: mosaic.cols, valid: (m, r, c) => mosaic.weightAt(r, c) !== null,
    box: (m, r, c) => ({x: Math.floor(c / kw) * tw + (c % kw) * zoom, y: Math.floor(r / kh) * th + (r % kh) * zoom,
      w: zoom, h: zoom}),
    at: (x, y) => (y % th === kh * zoom || x % tw === kw * zoom ? null
      : [0, Math.floor(y / th) * kh + Math.floor((y % th) / zoom), Math.floor(x / tw) * kw + Math.floor((x % tw) / zoom)]),
    cellOf: (m, r, c) => {
      const index = mosaic.weightAt(r, c) || [0, 0, 0, 0];
      return {text: `${built.layer.call} dL/dK[${index.join(", ")}]`,
        index: ((index[0] * kw + index[1]) * cin + index[2]) * cout + index[3], body: {layer: built.layer.call, index}};
    },
  });
  markSelection();
}

// Outline the map whose cell the panel explains.
function markSelection() {
  document.querySelectorAll(".map-grid .selected-map").forEach((x) => x.remove());
  const s = state.selected;
  if (!s || !s.kind) return;
  const built = maps.blocks.find((b) => b.layer.call === s.body.layer && b.kind === s.kind);
  if (!built || !built.canvas) return;
  if (built.tileBox && s.body.channel !== undefined) marker(built.canvas, built.tileBox(s.body.channel), "selected-map");
  else if (built.weightBox && s.body.index) marker(built.canvas, built.weightBox(s.body.index), "selected-map");
  else marker(built.canvas, {x: 0, y: 0, w: built.canvas.width, h: built.canvas.height}, "selected-map");
}
