"""The explorer page while a digit is drawn: pen-to-prediction time and main-thread long tasks, in Chromium.

    python benchmarks/bench_explorer_drawing.py                         # 10 strokes at 1280x900
    python benchmarks/bench_explorer_drawing.py --viewport 1280x900 390x844 --strokes 20 --json raw.json
    python benchmarks/bench_explorer_drawing.py --model runs/mnist      # a model file or run folder of your own

Without ``--model`` the script builds ``zoo.keras_convnet()``, compiles it untrained and saves it to a temporary
``.convscope`` file: the weights do not change how long anything takes, only what digit is predicted. It serves
that model with the explorer in this process (``ExplorerServer`` on a free local port, the ``mnist-sample`` test
images) and drives Debian's headless Chromium (``/usr/bin/chromium``) with Playwright's async API.

Before the page's own script runs, an init script installs in the page

- a ``PerformanceObserver`` of ``longtask`` entries (buffered): every main-thread task over 50 ms, its start and
  duration;
- capturing ``pointerdown`` / ``pointermove`` / ``pointerup`` listeners on ``window``, keeping each event's
  ``timeStamp`` (when the browser received the input) and ``performance.now()`` when the page got to handle it;
- a ``MutationObserver`` on ``#probabilities`` (child list, subtree, attributes), keeping the time of every
  mutation callback (a microtask: it runs when the script that changed the table is done) and of the end of the
  next frame (a timeout queued from ``requestAnimationFrame``, so after that frame's style, layout and paint);
- a ``PerformanceObserver`` of ``resource`` entries, keeping every ``/api/`` request (start, response end, size).

Each stroke (``--strokes``, after ``--warmup`` strokes not counted): click ``#clear-drawing`` and wait until the
page is settled (``body[data-busy='0']`` and no mutation of the probabilities for 500 ms); draw a "7": mouse
down, 40 moves 20 ms apart (0.8 s, a hand's speed), up, sent as DevTools ``Input.dispatchMouseEvent`` on that
schedule without waiting for the page to handle each one, as a real mouse does (Playwright's ``page.mouse``
waits for each event's acknowledgement, which a busy page holds back: a 0.8 s stroke took 9 s that way); wait
until settled again. Per stroke:

- pen-to-prediction: the last mutation of the probabilities minus the pointerup's ``timeStamp``, so it includes
  any time the pointerup waited for a busy main thread; pen-to-paint: the end of the frame after that mutation
  minus the same ``timeStamp``;
- the worst pointermove delay (``performance.now()`` at handling minus ``timeStamp``) while the pen is down;
- long tasks overlapping the time from the pointerdown to the settled moment, and those from the pointerdown to
  the pointerup ("pen down");
- the /api/analyze requests started in that time, and the last one's time from request start to response end
  (the server's work and the transfer).

The page's CSP forbids ``eval``; ``page.evaluate`` and init scripts go through the DevTools protocol and are not
subject to it. Like the other benchmarks, the script re-executes itself without ``OPENBLAS_CORETYPE`` /
``OPENBLAS_L2_SIZE``. Chromium, the server and the model share the machine's cores: run it on an idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time

if any(k in os.environ for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import numpy as np  # noqa: E402

import convscope  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
QUIET_MS = 500        # no mutation of the probabilities for this long (and no request in flight): settled
SETTLE_TIMEOUT_S = 120
MOVES = 40
MOVE_INTERVAL_S = 0.02
LONG_TASK_MS = 100    # issue 14's bound for a main-thread task while drawing

# A "7" as fractions of the drawing canvas: the bar left to right, then the stem down to the lower left.
SEVEN = [(0.22, 0.22), (0.78, 0.22), (0.40, 0.86)]

PROBES = """
(() => {
  const bench = window.__convscopeBench = {longtasks: [], down: [], moves: [], up: [], mutations: [], frames: [],
                                           requests: []};
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) bench.longtasks.push([e.startTime, e.duration]);
  }).observe({type: "longtask", buffered: true});
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.name.includes("/api/")) bench.requests.push([new URL(e.name).pathname, e.startTime, e.responseEnd,
                                                         e.encodedBodySize]);
    }
  }).observe({type: "resource", buffered: true});
  addEventListener("pointerdown", (e) => bench.down.push([e.timeStamp, performance.now()]), true);
  addEventListener("pointermove", (e) => bench.moves.push([e.timeStamp, performance.now()]), true);
  addEventListener("pointerup", (e) => bench.up.push([e.timeStamp, performance.now()]), true);
  const watch = () => {
    const table = document.getElementById("probabilities");
    if (!table) return;
    bench.table = table;
    new MutationObserver(() => {
      const t = performance.now();
      bench.mutations.push(t);
      // The frame after it: rAF runs before that frame's style, layout and paint, the timeout after them.
      requestAnimationFrame(() => setTimeout(() => bench.frames.push([t, performance.now()]), 0));
    }).observe(table, {childList: true, subtree: true, attributes: true});
  };
  if (document.readyState === "loading") addEventListener("DOMContentLoaded", watch); else watch();
})();
"""

STATE = """() => ({busy: document.body.dataset.busy, now: performance.now(),
                   last: window.__convscopeBench.mutations.at(-1) ?? null,
                   watched: document.getElementById("probabilities") === window.__convscopeBench.table})"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a model file or run folder (default: an untrained zoo.keras_convnet)")
    parser.add_argument("--strokes", type=int, default=10, help="strokes measured per viewport (default 10)")
    parser.add_argument("--warmup", type=int, default=1, help="strokes drawn first and not counted (default 1)")
    parser.add_argument("--viewport", nargs="+", default=["1280x900"], metavar="WxH",
                        help="one or more viewports, one table row each (default 1280x900; e.g. 390x844)")
    parser.add_argument("--json", metavar="PATH", help="write the raw per-stroke numbers here")
    args = parser.parse_args(argv)
    if args.strokes < 1 or args.warmup < 0:
        parser.error("--strokes must be at least 1 and --warmup at least 0")
    try:
        args.viewport = [tuple(int(v) for v in text.lower().split("x")) for text in args.viewport]
    except ValueError:
        parser.error(f"--viewport takes WIDTHxHEIGHT, e.g. 390x844; got {args.viewport}")
    if any(len(v) != 2 or min(v) < 1 for v in args.viewport):
        parser.error(f"--viewport takes WIDTHxHEIGHT, e.g. 390x844; got {args.viewport}")
    return args


def untrained_model(folder):
    """The Keras MNIST convnet, compiled, random weights, saved as a .convscope file; returns its path."""
    from convscope import zoo

    model = zoo.keras_convnet()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    path = os.path.join(folder, "keras_convnet_untrained.convscope")
    model.save(path)
    return path


def cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def convscope_commit():
    """``git rev-parse --short HEAD`` of the checkout the imported convscope lives in, flagged when its files differ."""
    package = os.path.dirname(os.path.abspath(convscope.__file__))
    try:
        commit = subprocess.run(["git", "-C", package, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        changed = subprocess.run(["git", "-C", package, "status", "--porcelain", "--", "."], capture_output=True,
                                 text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not in a git checkout"
    return f"{commit} + uncommitted changes" if changed else commit


async def wait_settled(page, after_ms):
    """Poll until no request is in flight and the probabilities have not changed for QUIET_MS, counting from
    ``after_ms`` (page time) at the earliest; returns the page's performance.now() at that moment."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        state = await page.evaluate(STATE)
        if not state["watched"]:
            raise RuntimeError("#probabilities is missing or was replaced by a new element: the benchmark watches the "
                               "element the page had when its DOM loaded")
        quiet_since = max(after_ms, state["last"] or 0.0)
        if state["busy"] == "0" and state["now"] - quiet_since >= QUIET_MS:
            return state["now"]
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the page did not settle within {SETTLE_TIMEOUT_S} s (body[data-busy] = {state['busy']!r})")


def stroke_points(box):
    """MOVES + 1 points along SEVEN, in viewport pixels, evenly spaced by length."""
    corners = np.array([(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in SEVEN])
    lengths = np.linalg.norm(np.diff(corners, axis=0), axis=1)
    at = np.concatenate([[0.0], np.cumsum(lengths)])
    targets = np.linspace(0.0, at[-1], MOVES + 1)
    return [(float(np.interp(s, at, corners[:, 0])), float(np.interp(s, at, corners[:, 1]))) for s in targets]


def mouse_event(kind, point, pressed):
    return {"type": kind, "x": point[0], "y": point[1], "button": "left", "buttons": 1 if pressed else 0,
            "clickCount": 1, "pointerType": "mouse"}


async def pen(cdp, points):
    """Down at points[0], a move to each further point MOVE_INTERVAL_S apart, up: sent on that schedule without
    waiting for the page to handle each event (as a real mouse does; Playwright's page.mouse waits for every
    event's acknowledgement, which a busy page delays, and would stretch a 0.8 s stroke to many seconds).
    Returns the seconds from down to up as sent."""
    loop = asyncio.get_running_loop()
    await cdp.send("Input.dispatchMouseEvent", mouse_event("mouseMoved", points[0], False))
    sent = [asyncio.ensure_future(cdp.send("Input.dispatchMouseEvent", mouse_event("mousePressed", points[0], True)))]
    start = loop.time()
    for k, point in enumerate(points[1:], 1):
        await asyncio.sleep(max(0.0, start + k * MOVE_INTERVAL_S - loop.time()))
        sent.append(asyncio.ensure_future(cdp.send("Input.dispatchMouseEvent", mouse_event("mouseMoved", point, True))))
    sent.append(asyncio.ensure_future(cdp.send("Input.dispatchMouseEvent",
                                               mouse_event("mouseReleased", points[-1], False))))
    wall_s = loop.time() - start
    await asyncio.gather(*sent)
    return wall_s


async def draw_stroke(page, cdp):
    """Clear, settle, draw one "7" at pen speed, settle; returns this stroke's numbers (page times in ms)."""
    await page.locator("#clear-drawing").scroll_into_view_if_needed()
    await page.click("#clear-drawing")
    await wait_settled(page, await page.evaluate("performance.now()"))
    await page.locator("#draw").scroll_into_view_if_needed()
    points = stroke_points(await page.locator("#draw").bounding_box())
    ups_before = await page.evaluate("window.__convscopeBench.up.length")
    wall_s = await pen(cdp, points)
    while await page.evaluate("window.__convscopeBench.up.length") == ups_before:  # not yet handled by the page
        await asyncio.sleep(0.01)
    end = await wait_settled(page, await page.evaluate("window.__convscopeBench.up.at(-1)[0]"))
    probes = await page.evaluate("window.__convscopeBench")
    (down_stamp, down_handled), (up_stamp, up_handled) = probes["down"][-1], probes["up"][-1]
    moves = [(stamp, handled) for stamp, handled in probes["moves"] if down_stamp <= stamp <= up_stamp]
    after_up = [t for t in probes["mutations"] if t >= up_stamp]
    last = after_up[-1] if after_up else None
    frame = next((f for t, f in probes["frames"] if t == last), None)
    analyses = sorted((r for r in probes["requests"] if r[0].endswith("/api/analyze") and down_stamp <= r[1] <= end),
                      key=lambda r: r[1])  # entries arrive as responses end
    final = analyses[-1] if analyses else None
    tasks = [(s, d) for s, d in probes["longtasks"] if down_stamp <= s + d and s <= end]  # overlapping
    return {
        "pen_to_prediction_ms": None if last is None else last - up_stamp,
        "pen_to_paint_ms": None if frame is None else frame - up_stamp,
        "pointerup_dispatch_delay_ms": up_handled - up_stamp,
        "pointerdown_dispatch_delay_ms": down_handled - down_stamp,
        "pen_down_ms": up_stamp - down_stamp,
        "stroke_sent_s": wall_s,
        "pointermoves_handled": len(moves),
        "pointermove_worst_delay_ms": max((handled - stamp for stamp, handled in moves), default=None),
        "mutations_while_pen_down": sum(down_stamp <= t < up_stamp for t in probes["mutations"]),
        "analyze_requests": len(analyses),
        "final_request_ms": None if final is None else final[2] - final[1],
        "final_request_bytes": None if final is None else final[3],
        "final_request_start_after_up_ms": None if final is None else final[1] - up_stamp,
        "long_tasks": [[s - down_stamp, d] for s, d in tasks],
        "long_tasks_pen_down": [[s - down_stamp, d] for s, d in tasks if s <= up_stamp],
        "settled_after_up_ms": end - up_stamp,
    }


async def measure(browser, url, viewport, strokes, warmup):
    """All strokes at one viewport in a fresh browser context; returns (per-stroke numbers, page errors)."""
    context = await browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    await context.add_init_script(PROBES)
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        await page.goto(url)
        await page.wait_for_selector("body[data-ready='1']", state="attached", timeout=SETTLE_TIMEOUT_S * 1000)
        await wait_settled(page, await page.evaluate("performance.now()"))
        for _ in range(warmup):
            await draw_stroke(page, cdp)
        return [await draw_stroke(page, cdp) for _ in range(strokes)], errors
    finally:
        await context.close()


def summary(viewport, results):
    """One table row: HEADER's columns for the strokes at ``viewport``."""
    def column(key):
        return [r[key] for r in results if r[key] is not None]

    def ms(values, *quantiles):
        return " / ".join(f"{np.percentile(values, q):.0f}" for q in quantiles) if values else "-"

    pen, paint = column("pen_to_prediction_ms"), column("pen_to_paint_ms")
    tasks = [d for r in results for _, d in r["long_tasks"]]
    down = [d for r in results for _, d in r["long_tasks_pen_down"]]
    missing = len(results) - len(pen)
    return [f"{viewport[0]}x{viewport[1]}", str(len(results)),
            ms(pen, 50, 90, 100) + (f" ({missing} without a new prediction)" if missing else ""),
            ms(paint, 50, 100), f"{np.median([r['analyze_requests'] for r in results]):.0f}",
            ms(column("final_request_ms"), 50), ms(column("pointermove_worst_delay_ms"), 100),
            str(len(tasks)), ms(tasks, 100), str(sum(d > LONG_TASK_MS for d in tasks)),
            f"{len(down)} / {ms(down, 100)}"]


HEADER = ["viewport", "strokes", "pen-to-prediction ms median / p90 / max", "pen-to-paint ms median / max",
          "analyze requests per stroke (median)", "final request ms (median)", "worst pointermove delay ms",
          "long tasks", "worst long task ms", f"long tasks > {LONG_TASK_MS} ms",
          "long tasks pen down: count / worst ms"]


def print_table(rows):
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for row in rows:
        print("| " + " | ".join(row) + " |")


async def run(args, url):
    """(Chromium's version, {viewport: (per-stroke numbers, page errors)})."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            return browser.version, {v: await measure(browser, url, v, args.strokes, args.warmup)
                                     for v in args.viewport}
        finally:
            await browser.close()


def main(argv=None):
    args = parse_args(argv)
    load_before = os.getloadavg()
    from convscope.explorer.server import ExplorerServer
    from convscope.explorer.workspace import Workspace

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    with tempfile.TemporaryDirectory() as folder:
        model_source = args.model or untrained_model(folder)
        model_note = args.model or ("zoo.keras_convnet(), untrained (random weights: they change the predicted digit, "
                                    "not the timing)")
        server = ExplorerServer(Workspace(model_source, "mnist-sample", announce=lambda message: None)).start()
        try:
            chromium, measured = asyncio.run(run(args, server.url))
        finally:
            server.stop()

    print(f"machine: {cpu_name()}, {os.cpu_count()} cores (platform.processor() {platform.processor()!r}), "
          f"1-minute load {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} at the end")
    print(f"Chromium {chromium} (headless), Python {platform.python_version()}, numpy {np.__version__}")
    print(f"convscope {convscope_commit()} at {os.path.dirname(os.path.abspath(convscope.__file__))}")
    print(f"model: {model_note}")
    print(f"stroke: a '7', {MOVES} mouse moves {MOVE_INTERVAL_S * 1000:.0f} ms apart; {args.warmup} warm-up stroke(s) "
          "not counted; long tasks: main-thread tasks over 50 ms from pointerdown until settled")
    print()
    print_table([summary(v, results) for v, (results, _) in measured.items()])
    for v, (_, errors) in measured.items():
        for error in errors:
            print(f"page error at {v[0]}x{v[1]}: {error}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"convscope": convscope_commit(), "convscope_path": convscope.__file__, "chromium": chromium,
                       "cpu": cpu_name(), "cores": os.cpu_count(), "model": model_note,
                       "viewports": {f"{v[0]}x{v[1]}": {"strokes": results, "page_errors": errors}
                                     for v, (results, errors) in measured.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
