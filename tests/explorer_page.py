"""Driving the explorer page in a real headless browser (Debian's chromium, Playwright): shared by the browser
tests. Screenshots go under the test's tmp folder, and into $CONVSCOPE_SCREENSHOTS when set (how docs/pictures
got its own)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SIZES = {"wide": (1280, 900), "phone": (390, 844)}


def open_page(browser, server, size):
    """A fresh page on the explorer at ``size`` (wide or phone), loaded and settled, and its list of page errors."""
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Chromium logs every HTTP error status as a console error; the tests check statuses themselves.
    page.on("console", lambda message: message.type == "error" and not message.text.startswith(
        "Failed to load resource") and errors.append(message.text))
    page.goto(server.url)
    page.wait_for_selector("body[data-ready='1']", state="attached", timeout=30_000)
    settle(page)
    return context, page, errors


def settle(page):
    """Wait until no request of the page is in flight (a selector, not a script: the page's CSP forbids eval)."""
    page.locator("body[data-busy='0']").wait_for(state="attached", timeout=30_000)


def screenshot(page, tmp_path, name, **kwargs):
    path = tmp_path / name
    page.screenshot(path=str(path), **kwargs)
    target = os.environ.get("CONVSCOPE_SCREENSHOTS")
    if target:
        shutil.copy(path, os.path.join(target, name))
    return path


def no_horizontal_scroll(page):
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def css_string(text: str) -> str:
    """``text`` as a quoted CSS string: layer names come from files and may hold quotes or backslashes."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\a ") + "'"


def sheet(page, call, kind):
    return page.locator(f".map-grid canvas[data-layer={css_string(call)}][data-kind='{kind}']")


def close_panel(page):
    if page.locator("#cell-panel.open").count():
        page.keyboard.press("Escape")


def click_at(page, canvas, x, y, route):
    """Click canvas pixel (x, y) (canvas units) and wait for the panel's answer from ``route``."""
    close_panel(page)
    canvas.scroll_into_view_if_needed()
    scale = canvas.evaluate("c => c.clientWidth / c.width")
    with page.expect_response(lambda response: f"/api/{route}" in response.url):
        canvas.click(position={"x": x * scale, "y": y * scale})
    settle(page)


def click_cell(page, call, kind, channel, row, col, route="cell"):
    """Click cell (row, col) of map ``channel`` on a layer's sheet of maps."""
    canvas = sheet(page, call, kind)
    d = {k: int(canvas.get_attribute(f"data-{k}")) for k in ("zoom", "cols", "gap", "band", "width", "height")}
    tile_w, tile_h = d["width"] * d["zoom"] + d["gap"], d["height"] * d["zoom"] + d["band"]
    x = (channel % d["cols"]) * tile_w + (col + 0.5) * d["zoom"]
    y = (channel // d["cols"]) * tile_h + (row + 0.5) * d["zoom"]
    click_at(page, canvas, x, y, route)


def click_unit(page, call, unit):
    canvas = sheet(page, call, "output")
    zoom = int(canvas.get_attribute("data-zoom"))
    click_at(page, canvas, (unit + 0.5) * zoom, 0.5 * zoom, "cell")


def click_weight(page, call, index):
    """Click kernel-gradient entry [i, j, c, f] on a conv layer's dL/dK mosaic (first layers: a tile per filter in
    rows of 8; deeper: a row per filter, a column per input channel)."""
    canvas = sheet(page, call, "kernel_gradient")
    zoom = int(canvas.get_attribute("data-zoom"))
    i, j, c, f = index
    kh, kw = int(canvas.get_attribute("data-kh")), int(canvas.get_attribute("data-kw"))
    tile_row, tile_col = (f // 8, f % 8) if c == 0 and zoom == 12 else (f, c)
    x = tile_col * (kw * zoom + 1) + (j + 0.5) * zoom
    y = tile_row * (kh * zoom + 1) + (i + 0.5) * zoom
    click_at(page, canvas, x, y, "kernel-gradient")


def shown(page, element_id) -> float:
    """The exact value behind a panel number, after checking that its text is that value at float32 precision
    (the shortest decimal that reads back as the same float32)."""
    element = page.locator(f"#{element_id}")
    value = float(element.get_attribute("data-value"))
    text = element.inner_text()
    assert np.float32(float(text)) == np.float32(value), (text, value)
    shortest = next(t for t in (f"{np.float32(value):.{p}g}" for p in range(1, 10))
                    if np.float32(float(t)) == np.float32(value))
    assert float(text) == float(shortest), (text, shortest)  # no digit more than float32 holds, none fewer
    return value


def check_claim(page, match_id, a, b):
    """The page says "the same" exactly when the two values are equal in float32."""
    text = page.inner_text(f"#{match_id}")
    assert text.startswith("✓") == (np.float32(a) == np.float32(b)), (text, a, b)
    if not text.startswith("✓"):
        assert "ulp apart in float32" in text


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright (the [test] extra)")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no browser at {CHROMIUM}: install Debian's chromium (.ci/run does)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
