"use strict";
// convscope explorer: a compact top-to-bottom drawing of a model's layer graph, as an inline SVG the learner picks
// layers from. A classic script (loaded before app.js) that defines one global, drawGraph; no libraries.
//
//   drawGraph(container, nodes, {selected, onPick}) -> {select(call)}
//
// nodes: the layer calls in topological order, [{call, class_name, inbound: [names], output_shape}, ...]; an
// inbound name that is no call is a model input, drawn as a small node on top. The layout is a layered DAG
// (Sugiyama style): rank = 1 + the highest rank of a node's inputs (inputs are rank 0); an edge that skips ranks
// passes through one narrow dummy slot per rank it crosses, so no edge runs through a box; a few barycentre
// sweeps order each rank (fewest crossings kept); x positions come from a weighted isotonic regression that puts
// each node as near the mean of its neighbours as the order and spacing allow. Boxes are as wide as the
// container allows (those that would stick out narrow first), and the SVG (viewBox, width 100%) scales down only
// past that; the drawing is laid out again when the container's width changes.
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const BOX_H = 22, INPUT_H = 16, GAP_Y = 14, PAD = 4, FONT = 11, TEXT_PAD = 5;
  const BOX_W_MAX = 200, BOX_W_MIN = 56;   // below the minimum the drawing scales down instead
  const GAP_BOXES = 10, GAP_LANE = 8;      // horizontal gap between two boxes; beside a skip-edge lane
  const SWEEPS = 4, FIT_ROUNDS = 12;
  const LANE_WEIGHT = 0.001;               // a skip edge steps aside for a box rather than push it off its line
  const COLOURS = {
    layer: {fill: "#ffffff", stroke: "#8a949e"},
    merge: {fill: "#fdefd2", stroke: "#b7791f"},
    input: {fill: "#e8eef5", stroke: "#7d8a97"},
    edge: "#9aa4ae", fork: "#5b6570", ink: "#1d232a", muted: "#5b6570",
  };
  // Long Keras class names, shortened for the box; the tooltip keeps the full one.
  const SHORTER = [[/Normalization/, "Norm"], [/Pooling/, "Pool"], [/Average/, "Avg"], [/^Depthwise/, "DW"],
    [/^Separable/, "Sep"], [/Transpose$/, "T"], [/^Concatenate$/, "Concat"], [/Padding/, "Pad"],
    [/Sampling/, "Samp"], [/^Random/, "Rand"]];
  const graphs = new WeakMap();            // container -> its ResizeObserver, let go when it is drawn anew
  let drawings = 0;                        // makes each drawing's marker id unique on the page

  function shortClass(name) {
    return SHORTER.reduce((s, [pattern, short]) => s.replace(pattern, short), name || "");
  }

  function shapeWords(shape) {
    if (!Array.isArray(shape)) return "unknown";
    if (shape.some(Array.isArray)) return shape.map(shapeWords).join(" and ");
    return shape.length ? shape.map((d) => (d === null ? "any" : d)).join(" by ") : "a scalar";
  }

  function shapeText(shape) {
    if (!Array.isArray(shape)) return "?";
    if (shape.some(Array.isArray)) return shape.map(shapeText).join(", ");
    return shape.length ? shape.map((d) => (d === null ? "?" : d)).join("×") : "scalar";
  }

  function element(tag, attributes, parent) {
    const el = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attributes)) el.setAttribute(key, value);
    if (parent) parent.appendChild(el);
    return el;
  }

  // ---------------------------------------------------------------- structure: items, ranks, order

  // Items are the boxes (layer calls and model inputs) and the dummy lane points of skip edges; segments join
  // items of neighbouring ranks; each edge remembers its chain of items for drawing.
  function structure(nodes) {
    const byName = new Map(), items = [], edges = [];
    const item = (props) => { const it = {preds: [], succs: [], ...props}; items.push(it); return it; };
    for (const node of nodes) {
      const seen = byName.get(node.call);
      if (seen) {
        throw new Error(seen.kind === "input" ? `drawGraph: ${node.call} is used before its own entry (nodes must ` +
          "be in topological order)" : `drawGraph: the call name ${node.call} appears twice`);
      }
      const inbound = node.inbound || [];
      for (const name of inbound) {
        if (!byName.has(name)) byName.set(name, item({kind: "input", name, rank: 0}));
      }
      const parents = [...new Set(inbound)].map((name) => byName.get(name));
      const rank = parents.length ? 1 + Math.max(...parents.map((p) => p.rank)) : 0;
      const it = item({kind: "layer", name: node.call, node, rank, merge: inbound.length >= 2});
      byName.set(node.call, it);
      for (const parent of parents) {
        const chain = [parent];
        for (let r = parent.rank + 1; r < rank; r++) chain.push(item({kind: "lane", rank: r, from: parent, to: it}));
        chain.push(it);
        for (let i = 1; i < chain.length; i++) { chain[i - 1].succs.push(chain[i]); chain[i].preds.push(chain[i - 1]); }
        edges.push(chain);
      }
    }
    const ranks = [];
    for (const it of items) (ranks[it.rank] = ranks[it.rank] || []).push(it);
    order(ranks);
    return {items, edges, ranks};
  }

  function crossings(ranks) {
    let count = 0;
    for (let r = 0; r + 1 < ranks.length; r++) {
      const segments = [];
      for (const u of ranks[r]) for (const v of u.succs) segments.push([u.pos, v.pos]);
      for (let i = 0; i < segments.length; i++) {
        for (let j = i + 1; j < segments.length; j++) {
          if ((segments[i][0] - segments[j][0]) * (segments[i][1] - segments[j][1]) < 0) count++;
        }
      }
    }
    return count;
  }

  // Barycentre heuristic: sweep down (sort each rank by the mean position of its predecessors), then up (of its
  // successors); keep the order with the fewest crossings seen.
  function order(ranks) {
    const number = () => ranks.forEach((rank) => rank.forEach((it, i) => { it.pos = i; }));
    number();
    let best = ranks.map((rank) => rank.slice()), fewest = crossings(ranks);
    for (let sweep = 0; sweep < 2 * SWEEPS && fewest > 0; sweep++) {
      const down = sweep % 2 === 0;
      const sequence = down ? ranks.slice(1) : ranks.slice(0, -1).reverse();
      for (const rank of sequence) {
        for (const it of rank) {
          const near = down ? it.preds : it.succs;
          it.key = near.length ? near.reduce((s, n) => s + n.pos, 0) / near.length : it.pos;
        }
        rank.sort((a, b) => a.key - b.key || a.pos - b.pos);
        rank.forEach((it, i) => { it.pos = i; });
      }
      const count = crossings(ranks);
      if (count < fewest) { fewest = count; best = ranks.map((rank) => rank.slice()); }
    }
    best.forEach((rank, r) => { ranks[r] = rank; });
    number();
  }

  // ---------------------------------------------------------------- geometry: x by isotonic regression, y by rank

  // The x (centres) nearest to `wanted` (least weighted squares) that keep the order with centres at least
  // `gaps[i]` apart: with y_i = x_i - offset_i the constraint is y non-decreasing, solved by pool-adjacent-violators.
  function placeRank(wanted, weights, gaps) {
    const offsets = [0];
    for (const gap of gaps) offsets.push(offsets[offsets.length - 1] + gap);
    const blocks = [];
    wanted.forEach((w, i) => {
      blocks.push({value: w - offsets[i], weight: weights[i], count: 1});
      while (blocks.length > 1 && blocks[blocks.length - 2].value > blocks[blocks.length - 1].value) {
        const b = blocks.pop(), a = blocks[blocks.length - 1];
        a.value = (a.value * a.weight + b.value * b.weight) / (a.weight + b.weight);
        a.weight += b.weight; a.count += b.count;
      }
    });
    const x = [];
    for (const block of blocks) for (let k = 0; k < block.count; k++) x.push(block.value + offsets[x.length]);
    return x;
  }

  // Positions every item (x: centre, top, bottom) for the box widths `w` that fit gave; returns the drawing's size.
  function layout(graph) {
    const half = (it) => it.w / 2;
    const gap = (a, b) => half(a) + half(b) + (a.kind === "lane" || b.kind === "lane" ? GAP_LANE : GAP_BOXES);
    const place = (rank, wantedOf) => {
      const xs = placeRank(rank.map(wantedOf), rank.map((it) => (it.kind === "lane" ? LANE_WEIGHT : 1)),
        rank.slice(1).map((it, i) => gap(rank[i], it)));
      rank.forEach((it, i) => { it.x = xs[i]; });
    };
    const mean = (list, fallback) => (list.length ? list.reduce((s, n) => s + n.x, 0) / list.length : fallback);
    // A box looks through a skip edge's lanes to the box at its far end: a residual Add lines up under the
    // block's input and its last conv (both in the chain), not halfway out to the lane beside it, while a
    // Concatenate still centres under all of its branches.
    const toward = (it, down) => {
      const near = down ? it.preds : it.succs;
      return it.kind === "lane" ? near : near.map((n) => (n.kind !== "lane" ? n : down ? n.from : n.to));
    };
    for (const rank of graph.ranks) place(rank, () => 0);
    // alternate down (toward the parents) and up (toward the children), ending down: a lane follows its
    // neighbour, so a skip edge runs straight, as far out as its most crowded rank needs
    for (let pass = 0; pass <= 2 * SWEEPS; pass++) {
      const down = pass % 2 === 0;
      for (const rank of down ? graph.ranks : graph.ranks.slice().reverse()) {
        place(rank, (it) => mean(toward(it, down), it.x));
      }
    }
    let left = 0, right = 0;   // an empty graph is an empty drawing
    if (graph.items.length) {
      left = Math.min(...graph.items.map((it) => it.x - half(it)));
      right = Math.max(...graph.items.map((it) => it.x + half(it)));
    }
    let top = PAD;
    for (const rank of graph.ranks) {
      const height = rank.some((it) => it.kind === "layer") ? BOX_H : INPUT_H;
      for (const it of rank) {
        it.x += PAD - left;
        it.top = top;
        it.bottom = top + (it.kind === "layer" ? BOX_H : it.kind === "input" ? INPUT_H : height);
      }
      top += height + GAP_Y;
    }
    return {width: right - left + 2 * PAD, height: graph.ranks.length ? top - GAP_Y + PAD : 2 * PAD};
  }

  // The span [low, low + room] that the boxes stick out of least (summed): the cost is convex and piecewise linear
  // in low, so its minimum is at a breakpoint, where some box's left or right edge meets the span's.
  function bestSpan(boxes, room) {
    const outside = (low) => boxes.reduce((sum, it) =>
      sum + Math.max(0, low - (it.x - it.w / 2)) + Math.max(0, it.x + it.w / 2 - low - room), 0);
    let best = 0, least = Infinity;
    for (const it of boxes) {
      for (const low of [it.x - it.w / 2, it.x + it.w / 2 - room]) {
        const cost = outside(low);
        if (cost < least) { least = cost; best = low; }
      }
    }
    return [best, best + room];
  }

  // Sizes the boxes for `available` pixels. Each box starts with its rank's share of the width (at most
  // BOX_W_MAX); then, while the drawing is too wide, each box that sticks out of the best span of that width
  // narrows (to BOX_W_MIN at least; past that the SVG scales down): the branches of a wide rank, or a column
  // pushed aside by a long skip edge, get narrow boxes while a chain elsewhere keeps wide ones. Returns the
  // widths as a string that tells two sizings apart.
  function fit(graph, available) {
    const boxes = graph.items.filter((it) => it.kind !== "lane");
    for (const it of graph.items) it.w = 0;
    for (const rank of graph.ranks) {
      const count = rank.filter((it) => it.kind !== "lane").length, lanes = rank.length - count;
      const share = (available - 2 * PAD - (count - 1) * GAP_BOXES - 2 * lanes * GAP_LANE) / count;
      for (const it of rank) if (it.kind !== "lane") it.w = Math.floor(Math.min(BOX_W_MAX, Math.max(BOX_W_MIN, share)));
    }
    for (let round = 0; round < FIT_ROUNDS; round++) {
      const {width} = layout(graph);
      if (width <= available) break;
      const [low, high] = bestSpan(boxes, available - 2 * PAD);
      let narrowed = false;
      for (const it of boxes) {
        const over = Math.max(low - (it.x - it.w / 2), it.x + it.w / 2 - high);
        if (over <= 0 || it.w === BOX_W_MIN) continue;
        // by the overshoot, not twice it (the centre stays, so a side loses half): its neighbours move in too
        it.w = Math.max(BOX_W_MIN, Math.floor(it.w - over - 1));
        narrowed = true;
      }
      if (!narrowed) break;
    }
    return boxes.map((it) => it.w).join(",");
  }

  // ---------------------------------------------------------------- drawing

  function measurer(container) {
    const context = document.createElement("canvas").getContext("2d");
    context.font = `${FONT}px ${getComputedStyle(container).fontFamily || "sans-serif"}`;
    return (text) => context.measureText(text).width;
  }

  // The label that fits `room` pixels: "name · Class", else the whole name (the box's identity, as in the layer
  // list), else "name_… · Class" (six characters of the name at least), else "nam…".
  function fitLabel(name, cls, room, measure) {
    const tail = cls ? " · " + cls : "";
    if (measure(name + tail) <= room) return [name, tail];
    if (measure(name) <= room) return [name, ""];
    const longest = (suffix, least) => {
      let lo = least, hi = name.length - 1, found = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (measure(name.slice(0, mid) + "…" + suffix) <= room) { found = mid; lo = mid + 1; } else hi = mid - 1;
      }
      return found;
    };
    const withClass = tail ? longest(tail, Math.min(name.length - 1, 6)) : -1;
    if (withClass >= 0) return [name.slice(0, withClass) + "…", tail];
    return [name.slice(0, Math.max(1, longest("", 1))) + "…", ""];
  }

  function tooltip(node) {
    const shared = /^(.*)#(\d+)$/.exec(node.call);
    const lines = [`${node.call} (${node.class_name})`, `output ${shapeText(node.output_shape)}`,
      `inputs: ${(node.inbound || []).join(", ") || "none"}`];
    if (shared) lines.push(`call ${Number(shared[2]) + 1} of the shared layer ${shared[1]}`);
    return lines.join("\n");
  }

  function ariaLabel(node) {
    return `layer ${node.call}, ${node.class_name}, output ${shapeWords(node.output_shape)}, ` +
      `inputs: ${(node.inbound || []).join(", ") || "none"}`;
  }

  // Cubic curves with vertical tangents between ranks, straight down through each lane slot.
  function edgePath(chain) {
    let d = `M${chain[0].x},${chain[0].bottom}`, y = chain[0].bottom, x = chain[0].x;
    for (let i = 1; i < chain.length; i++) {
      const it = chain[i], mid = (y + it.top) / 2;
      d += ` C${x},${mid} ${it.x},${mid} ${it.x},${it.top}`;
      x = it.x; y = it.top;
      if (it.kind === "lane") { d += ` L${x},${it.bottom}`; y = it.bottom; }
    }
    return d;
  }

  function render(container, graph, measure, handlers) {
    const size = layout(graph);
    const svg = element("svg", {
      class: "graph", viewBox: `0 0 ${size.width} ${size.height}`, width: "100%", role: "group",
      "aria-label": `model graph, ${graph.items.filter((it) => it.kind === "layer").length} layers`,
    });
    // never wider than drawn (a short column stays small on a wide page); narrower containers scale it down
    svg.style.display = "block";
    svg.style.maxWidth = `${size.width}px`;
    svg.style.margin = "0 auto";
    const marker = `convscope-graph-arrow-${++drawings}`;
    const defs = element("defs", {}, svg);
    const arrow = element("marker", {id: marker, viewBox: "0 0 6 6", refX: 6, refY: 3, markerWidth: 5,
      markerHeight: 5, orient: "auto"}, defs);
    element("path", {d: "M0,0 L6,3 L0,6 z", fill: COLOURS.edge}, arrow);
    const edges = element("g", {class: "graph-edges", fill: "none", stroke: COLOURS.edge, "stroke-width": 1.2}, svg);
    for (const chain of graph.edges) {
      element("path", {class: "graph-edge", d: edgePath(chain), "marker-end": `url(#${marker})`}, edges);
    }
    const boxes = element("g", {class: "graph-nodes"}, svg);
    const views = new Map();
    for (const it of graph.items) {
      if (it.kind === "lane") continue;
      const layer = it.kind === "layer";
      const height = it.bottom - it.top, boxW = it.w;
      const look = layer ? (it.merge ? COLOURS.merge : COLOURS.layer) : COLOURS.input;
      const g = element("g", {transform: `translate(${it.x - boxW / 2},${it.top})`}, boxes);
      element("title", {}, g).textContent = layer ? tooltip(it.node) : `model input ${it.name}`;
      element("rect", {class: "box", width: boxW, height, rx: layer ? 4 : height / 2, fill: look.fill,
        stroke: look.stroke, "stroke-width": 1}, g);
      const [name, tail] = fitLabel(it.name, layer ? shortClass(it.node.class_name) : "", boxW - 2 * TEXT_PAD, measure);
      const text = element("text", {class: "label", x: boxW / 2, y: height / 2, "text-anchor": "middle",
        "dominant-baseline": "central", "font-size": layer ? FONT : FONT - 1, fill: COLOURS.ink}, g);
      text.textContent = name;
      if (tail) element("tspan", {class: "class-name", fill: COLOURS.muted}, text).textContent = tail;
      if (it.succs.length >= 2) {
        element("circle", {class: "fork", cx: boxW / 2, cy: height, r: 2.5, fill: COLOURS.fork}, g);
      }
      if (!layer) { g.setAttribute("class", "graph-input"); continue; }
      g.setAttribute("class", "graph-node" + (it.merge ? " merge" : "") + (it.succs.length >= 2 ? " branch" : ""));
      g.setAttribute("tabindex", "0");
      g.setAttribute("role", "button");
      g.setAttribute("aria-label", ariaLabel(it.node));
      g.dataset.call = it.name;
      g.style.cursor = "pointer";
      g.addEventListener("click", () => handlers.pick(it.name));
      g.addEventListener("keydown", (event) => handlers.key(event, it.name));
      views.set(it.name, g);
    }
    container.replaceChildren(svg);
    return views;
  }

  function drawGraph(container, nodes, {selected = null, onPick = null} = {}) {
    if (graphs.has(container)) graphs.get(container).disconnect();
    const graph = structure(nodes);
    const calls = nodes.map((node) => node.call);
    const measure = measurer(container);
    let views = new Map(), current = null, drawn = null;

    function select(call) {
      const previous = views.get(current);
      if (previous) { previous.classList.remove("selected"); previous.removeAttribute("aria-current"); }
      const next = views.get(call);
      current = next ? call : null;
      if (next) { next.classList.add("selected"); next.setAttribute("aria-current", "true"); }
      return Boolean(next);
    }
    const handlers = {
      pick(call) {
        select(call);
        if (onPick) onPick(call);
      },
      key(event, call) {
        const i = calls.indexOf(call);
        const moves = {ArrowUp: i - 1, ArrowDown: i + 1, Home: 0, End: calls.length - 1};
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();     // Space would scroll the page
          handlers.pick(call);
        } else if (event.key in moves) {
          event.preventDefault();
          const target = views.get(calls[Math.min(calls.length - 1, Math.max(0, moves[event.key]))]);
          if (target) target.focus();
        }
      },
    };
    // Lay out for the container's inner width; again when it changes enough to change the boxes' widths.
    function draw() {
      const style = getComputedStyle(container);
      const inner = container.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
      if (!(inner > 0) && drawn !== null) return;   // hidden: keep the drawing until it shows again
      const sizing = fit(graph, inner > 0 ? inner : Infinity);
      if (sizing === drawn) return;
      const focused = [...views].find(([, g]) => g === document.activeElement);
      drawn = sizing;
      views = render(container, graph, measure, handlers);
      const keep = current;
      current = null;
      select(keep);
      if (focused && views.has(focused[0])) views.get(focused[0]).focus();
    }
    draw();
    select(selected);
    if (typeof ResizeObserver === "function") {
      let frame = 0;
      const observer = new ResizeObserver(() => {
        cancelAnimationFrame(frame);
        frame = requestAnimationFrame(draw);   // outside the observer's callback: no resize loop warnings
      });
      observer.observe(container);
      graphs.set(container, observer);
    }
    return {select};
  }

  window.drawGraph = drawGraph;
})();
