"""The explorer page in a real headless browser: Debian's chromium driven by Playwright.

The page loads, a drawn digit is predicted, clicking a feature-map cell shows its arithmetic, and every number
the page shows equals what the model's forward pass and the loop reference compute. Screenshots are saved
under the test's tmp folder (and into $CONVSCOPE_SCREENSHOTS when set, which is how docs/pictures got its own).
"""

from __future__ import annotations

import hashlib
import os
import shutil

import numpy as np
import pytest

pytest.importorskip("flask", reason="the explorer needs the optional [explorer] extra (Flask)")
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright (the [test] extra)")

from convscope import runs
from convscope.datasets import mnist_sample
from convscope.explorer import compute
from convscope.explorer.server import ExplorerServer
from convscope.explorer.workspace import Workspace
from convscope.images import to_mnist
from convscope.arraymath.reference import conv2d_loops

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not os.path.exists(CHROMIUM):
    pytest.skip(f"no browser at {CHROMIUM}: install Debian's chromium (.ci/run does)", allow_module_level=True)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real run folder: the Keras convnet trained 2 epochs on 1,000 sample images (a few seconds), good enough
    to tell a drawn 1 from a 0."""
    folder = tmp_path_factory.mktemp("explorer-browser") / "run"
    cfg = runs.RunConfig(dataset="mnist-sample", epochs=2, batch_size=64, limit=1000)
    model = runs.start(cfg, folder)
    (x, y), _ = mnist_sample.load_data()
    x, y = runs.prepare(x[:1000], y[:1000])
    model.fit(x, y, batch_size=64, epochs=2, validation_split=0.1, callbacks=[runs.RunRecorder(folder)], verbose=0)
    model.save(folder / runs.FINAL_MODEL)
    return folder


@pytest.fixture(scope="module")
def server(run_dir):
    running = ExplorerServer(Workspace(run_dir, "mnist-sample", announce=lambda message: None)).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server, tmp_path):
    """A fresh page on the explorer, loaded and settled; fails the test on any JavaScript error."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Chromium logs every HTTP error status as a console error; the tests check statuses themselves.
    page.on("console", lambda message: message.type == "error" and not message.text.startswith(
        "Failed to load resource") and errors.append(message.text))
    page.goto(server.url)
    page.wait_for_selector("body[data-ready='1']", state="attached", timeout=30_000)
    settle(page)
    yield page
    context.close()
    assert not errors, errors


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


def model_of(server):
    return server.app.config["EXPLORER_WORKSPACE"].model


def test_page_loads_with_the_model_column_and_a_test_image(page, server, tmp_path):
    model = model_of(server)
    items = page.locator("#layer-list li")
    assert items.count() == len(model.layers)
    assert "conv2d_1" in items.nth(2).inner_text() and "11 × 11 × 64" in items.nth(2).inner_text()
    assert "18,496 parameters" in items.nth(2).inner_text()
    x0 = mnist_sample.load_data()[1][0][0]
    probabilities = model.predict(compute.as_input(x0), verbose=0)[0]
    assert page.inner_text("#prediction") == str(int(np.argmax(probabilities)))
    shown = [float(row.get_attribute("data-probability")) for row in page.locator("#probabilities tr").all()]
    np.testing.assert_allclose(shown, probabilities, rtol=1e-6)
    # Every layer's maps are drawn: 32 + 32 + 32 + 64 + 64 + 64 canvases, and the filters and run sections.
    assert page.locator(".map-grid canvas[data-layer='conv2d']").count() == 64
    assert page.locator(".map-grid canvas[data-layer='max_pooling2d_1']").count() == 64
    assert page.locator("#filters canvas.mosaic").count() == 4  # weights and kernel gradients of two conv layers
    assert page.is_visible("#run-section") and page.inner_text("#run-epoch-label") == "initialization"
    screenshot(page, tmp_path, "explorer_page.png")


def draw_one(page):
    """Draw a slanted vertical stroke (a "1") with the mouse on the 280x280 canvas."""
    box = page.locator("#draw").bounding_box()
    page.mouse.move(box["x"] + 150, box["y"] + 40)
    page.mouse.down()
    for k in range(1, 21):
        page.mouse.move(box["x"] + 150 - k, box["y"] + 40 + 10 * k)
    with page.expect_response(lambda response: "/api/analyze" in response.url):
        page.mouse.up()
    settle(page)


def test_a_drawn_digit_is_predicted(page, server, tmp_path):
    draw_one(page)
    drawing = np.array(page.evaluate("drawingPixels()"), dtype=np.float64).reshape(280, 280)
    assert drawing.max() == 255 and (drawing > 0).mean() < 0.2
    image = to_mnist(drawing)
    probabilities = model_of(server).predict(compute.as_input(image), verbose=0)[0]
    assert page.inner_text("#prediction") == str(int(np.argmax(probabilities))) == "1"
    shown = [float(row.get_attribute("data-probability")) for row in page.locator("#probabilities tr").all()]
    np.testing.assert_allclose(shown, probabilities, rtol=1e-5)
    assert "your drawing" in page.inner_text("#input-note")
    screenshot(page, tmp_path, "explorer_drawn.png", clip={"x": 0, "y": 0, "width": 1500, "height": 560})


def click_cell(page, layer, kind, channel, row, col):
    canvas = page.locator(f".map-grid canvas[data-layer='{layer}'][data-kind='{kind}'][data-channel='{channel}']")
    canvas.scroll_into_view_if_needed()
    zoom = canvas.evaluate("c => c.clientWidth") / int(canvas.get_attribute("data-width"))
    with page.expect_response(lambda response: "/api/cell" in response.url):
        canvas.click(position={"x": (col + 0.5) * zoom, "y": (row + 0.5) * zoom})
    settle(page)


def shown_value(page, element_id) -> float:
    element = page.locator(f"#{element_id}")
    value = float(element.get_attribute("data-value"))
    assert float(element.inner_text()) == pytest.approx(value, rel=1e-6, abs=1e-9)  # the text shows the same number
    return value


def test_clicking_a_cell_shows_its_arithmetic_equal_to_the_forward_pass(page, server, tmp_path):
    model = model_of(server)
    x0 = mnist_sample.load_data()[1][0][0]
    records = model.trace(compute.as_input(x0))
    for layer, row, col, channel in (("conv2d", 12, 15, 5), ("conv2d_1", 4, 6, 21)):
        click_cell(page, layer, "output", channel, row, col)
        panel = page.inner_text("#cell-body")
        assert f"{layer} (Conv2D), row {row}, col {col}, channel {channel}" in panel
        position = [l.name for l in model.layers].index(layer)
        traced = float(records[position].output[0, row, col, channel])
        assert shown_value(page, "cell-output") == pytest.approx(traced, rel=1e-5, abs=1e-6)
        assert shown_value(page, "cell-traced") == traced
        kernel, bias = model.get_layer(layer).kernel.value, model.get_layer(layer).bias.value
        z = conv2d_loops(records[position].input, kernel[..., channel : channel + 1], bias[channel : channel + 1])
        assert shown_value(page, "cell-z") == pytest.approx(float(z[0, row, col, 0]), rel=1e-5, abs=1e-6)
        assert shown_value(page, "cell-bias") == pytest.approx(float(bias[channel]))
        assert shown_value(page, "cell-sum") + shown_value(page, "cell-bias") == pytest.approx(shown_value(page, "cell-z"))
        assert page.inner_text("#cell-match") == "✓ the same value"
    # conv2d_1 at (4, 6) sees input rows 8-15, cols 12-19 (two 3x3 convs and a 2x2 pooling between them).
    assert "rows 8-15, cols 12-19" in page.inner_text("#cell-body")
    screenshot(page, tmp_path, "explorer_cell.png")


def test_editing_a_kernel_weight_recomputes_without_touching_the_file(page, server, run_dir, tmp_path):
    model_file = run_dir / runs.FINAL_MODEL
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()
    x0 = mnist_sample.load_data()[1][0][0]
    row, col = [int(v) - 1 for v in np.argwhere(x0 > 200)[0]]  # a window centred on ink, so the centre weight counts
    click_cell(page, "conv2d", "preactivation", 7, row, col)
    z_before = shown_value(page, "cell-z")
    weight = page.locator("#cell-body input[data-index='1,1,0,7']")
    with page.expect_response(lambda response: "/api/analyze" in response.url):
        weight.fill("3")
        weight.press("Enter")
    settle(page)
    edited = compute.edited_copy(model_of(server), [{"layer": "conv2d", "index": [1, 1, 0, 7], "value": 3.0}])
    expected = float(edited.trace(compute.as_input(x0))[0].preactivation[0, row, col, 7])
    assert expected != pytest.approx(z_before)
    assert shown_value(page, "cell-z") == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert page.inner_text("#cell-match") == "✓ the same value"
    assert "1 kernel weight edited" in page.inner_text("#edit-count")
    probabilities = edited.predict(compute.as_input(x0), verbose=0)[0]
    shown = [float(row.get_attribute("data-probability")) for row in page.locator("#probabilities tr").all()]
    np.testing.assert_allclose(shown, probabilities, rtol=1e-5)
    assert hashlib.sha256(model_file.read_bytes()).hexdigest() == digest
    page.click("#reset-edits")
    settle(page)
    assert shown_value(page, "cell-z") == pytest.approx(z_before)


def test_an_uploaded_picture_is_predicted_and_a_bad_one_reported(page, server, tmp_path):
    from PIL import Image

    x, y = mnist_sample.load_data()[1]
    picture = tmp_path / "digit.png"
    big = 255 - np.kron(x[11], np.ones((6, 6), np.uint8))  # 168x168, dark ink on white paper
    Image.fromarray(big).save(picture)
    with page.expect_response(lambda response: "/api/analyze" in response.url):
        page.set_input_files("#upload", str(picture))
    settle(page)
    probabilities = model_of(server).predict(compute.as_input(to_mnist(big)), verbose=0)[0]
    assert page.inner_text("#prediction") == str(int(np.argmax(probabilities)))
    assert "from digit.png" in page.inner_text("#input-note")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not a picture")
    with page.expect_response(lambda response: "/api/upload" in response.url) as answer:
        page.set_input_files("#upload", str(junk))
    assert answer.value.status == 400
    settle(page)
    assert "cannot read the upload" in page.inner_text("#status")
    assert page.inner_text("#prediction") == str(int(np.argmax(probabilities)))  # the page carries on
