"""The explorer page in a real headless browser (Debian's chromium driven by Playwright), at 1280x900 and 390x844.

The page loads, a drawn digit is predicted, clicking a map cell shows its arithmetic, the backward pass is shown
cell by cell (kernel and input gradients, pooling's routing), softmax explains the prediction, a keyboard alone
reaches a conv cell's arithmetic, and every number the page shows equals what the model computed (in float32, or
within float32's rounding of a sum, and then the page says so).
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest

pytest.importorskip("flask", reason="the explorer needs the optional [explorer] extra (Flask)")

from explorer_page import (  # noqa: E402  (after the skip: the helpers need Playwright only when run)
    SIZES, browser, check_claim, click_cell, click_unit, click_weight, close_panel, no_horizontal_scroll, open_page,
    screenshot, settle, sheet, shown,
)
from convscope import runs
from convscope.datasets import mnist_sample
from convscope.explorer import compute
from convscope.explorer.server import ExplorerServer
from convscope.explorer.workspace import Workspace
from convscope.images import opaque, to_mnist

__all__ = ["browser"]  # a fixture, imported for pytest


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


@pytest.fixture(params=list(SIZES))
def size(request):
    return request.param


@pytest.fixture
def page(browser, server, size):
    """A fresh page at one of the two sizes; fails the test on any JavaScript error."""
    context, page, errors = open_page(browser, server, size)
    yield page
    context.close()
    assert not errors, errors


def model_of(server):
    return server.app.config["EXPLORER_WORKSPACE"].model


def sample_test_set():
    return mnist_sample.load_data()[1]


def traced(server, index=0, label=True):
    x, y = sample_test_set()
    return model_of(server).trace(compute.as_input(x[index]), np.array([y[index]]) if label else None)


def record(records, call):
    return next(r for r in records if r.call == call)


def test_page_loads_with_the_layers_graph_and_a_test_image(page, server, size, tmp_path):
    model = model_of(server)
    calls = [r.call for r in model.trace(compute.as_input(sample_test_set()[0][0]))]
    assert page.locator("#layer-list li").count() == len(calls) == page.locator("#graph .graph-node").count()
    second = " ".join(page.locator("#layer-list li").nth(2).text_content().split())
    assert "conv2d_1" in second and "11 × 11 × 64" in second and "18,496 parameters" in second and "← max_pooling2d" in second
    probabilities = model.predict(compute.as_input(sample_test_set()[0][0]), verbose=0)[0]
    assert page.inner_text("#prediction") == str(int(np.argmax(probabilities)))
    shown_p = [float(row.get_attribute("data-probability")) for row in page.locator("#probabilities tr").all()]
    np.testing.assert_allclose(shown_p, probabilities, rtol=1e-6)
    # One canvas per block of maps (not one per map): conv2d's z and output, and so on.
    assert sheet(page, "conv2d", "output").get_attribute("data-channels") == "32"
    assert page.locator("#maps figure.sheet canvas").count() == 10  # z and output of conv2d, conv2d_1, dense; 4 others
    assert page.locator("#filters canvas.mosaic").count() == 4  # weights and kernel gradients of two conv layers
    assert page.is_visible("#run-section") and page.inner_text("#run-epoch-label") == "initialization"
    assert no_horizontal_scroll(page)
    screenshot(page, tmp_path, f"explorer_page_{size}.png")
    page.locator("#run-section").scroll_into_view_if_needed()
    screenshot(page, tmp_path, f"explorer_run_{size}.png")


def draw_one(page):
    """Draw a slanted vertical stroke (a "1") with the mouse on the 280x280 canvas."""
    canvas = page.locator("#draw")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    k = box["width"] / 280
    page.mouse.move(box["x"] + 150 * k, box["y"] + 40 * k)
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(box["x"] + (150 - step) * k, box["y"] + (40 + 10 * step) * k)
    page.mouse.up()
    settle(page)
    page.wait_for_function("() => document.body.dataset.busy === '0'")


def test_a_drawn_digit_is_predicted(page, server, size, tmp_path):
    draw_one(page)
    drawing = np.array(page.evaluate("drawingPixels()"), dtype=np.float64).reshape(280, 280)
    assert drawing.max() == 255 and (drawing > 0).mean() < 0.2
    image = to_mnist(drawing)
    probabilities = model_of(server).predict(compute.as_input(image), verbose=0)[0]
    assert page.inner_text("#prediction") == str(int(np.argmax(probabilities))) == "1"
    shown_p = [float(row.get_attribute("data-probability")) for row in page.locator("#probabilities tr").all()]
    np.testing.assert_allclose(shown_p, probabilities, rtol=1e-5)
    assert "your drawing" in page.inner_text("#input-note") and not page.is_visible("#blank-flag")
    page.locator("#draw").scroll_into_view_if_needed()
    screenshot(page, tmp_path, f"explorer_drawn_{size}.png")


def test_a_conv_cell_shows_its_arithmetic_and_slides_its_window(page, server, size, tmp_path):
    model = model_of(server)
    records = traced(server, label=False)
    for call, row, col, channel in (("conv2d", 12, 15, 5), ("conv2d_1", 4, 6, 21)):
        click_cell(page, call, "output", channel, row, col)
        panel = page.inner_text("#cell-body")
        assert f"{call} (Conv2D), row {row}, col {col}, channel {channel}" in panel
        rec = record(records, call)
        z_traced = float(rec.preactivation[0, row, col, channel])
        z = shown(page, "cell-z")
        assert shown(page, "cell-traced-z") == z_traced
        bias = float(model.get_layer(call).bias.value[channel])
        assert shown(page, "cell-bias") == np.float32(bias)
        assert z == float(np.float32(np.float32(shown(page, "cell-sum")) + np.float32(bias)))  # one float32 addition
        assert abs(z - z_traced) <= 1e-6 * max(1, abs(z_traced))
        check_claim(page, "cell-z-match", z, z_traced)
        assert shown(page, "cell-output") == float(np.float32(max(z, 0.0)))
        assert shown(page, "cell-traced") == float(rec.output[0, row, col, channel])
        check_claim(page, "cell-match", shown(page, "cell-output"), shown(page, "cell-traced"))
    # conv2d_1 at (4, 6) sees input rows 8-15, cols 12-19 (two 3x3 convs and a 2x2 pooling between them).
    assert "rows 8-15, cols 12-19" in page.inner_text("#cell-body")
    screenshot(page, tmp_path, f"explorer_cell_{size}.png")
    # The sliding window starts at the clicked cell; stepping walks the output row by row.
    assert "position 51 of 121: output (4, 6)" in page.inner_text(".step-text")
    page.click("#slide-start")
    for _ in range(3):
        page.click("#slide-next")
    step = page.inner_text(".step-text")
    assert step.startswith("position 4 of 121: output (0, 3) = ")
    value = float(step.split("= ")[1].split(" ")[0])
    assert np.float32(value) == record(records, "conv2d_1").preactivation[0, 0, 3, 21]
    assert no_horizontal_scroll(page)
    page.locator(".slide-card").scroll_into_view_if_needed()
    screenshot(page, tmp_path, f"explorer_slide_{size}.png")


def backward(page):
    page.check("#mode-backward")
    settle(page)
    page.wait_for_selector(".map-grid canvas[data-kind='kernel_gradient']")


def test_the_kernel_gradient_panel_sums_the_correlation_to_traces_value(page, server, size, tmp_path):
    records = traced(server)
    backward(page)
    for call, index in (("conv2d", (1, 2, 0, 7)), ("conv2d_1", (2, 0, 13, 40))):
        click_weight(page, call, index)
        assert f"{call}: dL/dK[{', '.join(map(str, index))}]" in page.inner_text("#cell-body")
        expected = float(record(records, call).param_grads["kernel"][index])
        assert shown(page, "grad-traced") == expected
        total = shown(page, "grad-sum")
        bound = 1e-6 * max(1.0, abs(expected)) + 26 * 26 * 6e-8 * np.abs(
            record(records, call).grad_preactivation).max()
        assert abs(total - expected) <= bound
        check_claim(page, "grad-match", total, expected)
    # The running sum, stepped to the last position, is the sum shown.
    assert "running sum" in page.inner_text(".step-text")
    assert no_horizontal_scroll(page)
    screenshot(page, tmp_path, f"explorer_kernel_gradient_{size}.png")


def test_the_input_gradient_panel_is_the_full_convolution(page, server, size, tmp_path):
    records = traced(server)
    backward(page)
    for call, row, col, channel in (("conv2d_1", 6, 7, 3), ("conv2d", 10, 14, 0)):
        click_cell(page, call, "grad_input", channel, row, col, route="input-gradient")
        assert "rotated by 180 degrees" in page.inner_text("#cell-body")
        expected = float(record(records, call).grad_input[0, row, col, channel])
        assert shown(page, "grad-traced") == expected
        assert abs(shown(page, "grad-sum") - expected) <= 1e-6 * max(1e-3, abs(expected))
        check_claim(page, "grad-match", shown(page, "grad-sum"), expected)
    # The first conv's dL/dx is the saliency map, dL/d(input).
    np.testing.assert_array_equal(records.grad_input[0, 10, 14, 0], record(records, "conv2d").grad_input[0, 10, 14, 0])
    screenshot(page, tmp_path, f"explorer_input_gradient_{size}.png")


def test_max_pooling_marks_its_maximum_and_where_the_gradient_goes(page, server, size, tmp_path):
    records = traced(server)
    rec = record(records, "max_pooling2d")
    backward(page)
    row, col, channel = 6, 6, 0
    click_cell(page, "max_pooling2d", "grad_output", channel, row, col, route="pool-gradient")
    window = rec.input[0, 2 * row : 2 * row + 2, 2 * col : 2 * col + 2, channel]
    i, j = np.unravel_index(np.argmax(window), window.shape)
    maximum = page.locator("#pool-max")
    assert float(maximum.get_attribute("data-value")) == window[i, j]
    tables = page.locator("#cell-body table")
    routed = [float(td.get_attribute("data-value")) for td in tables.nth(1).locator("td").all()]
    assert routed[i * 2 + j] == float(rec.grad_output[0, row, col, channel]) and np.count_nonzero(routed) <= 1
    assert page.inner_text("#grad-match").startswith("✓")
    screenshot(page, tmp_path, f"explorer_pool_gradient_{size}.png")
    # In the forward pass, the pooling cell marks its maximum too.
    page.check("input[value='forward']")
    settle(page)
    click_cell(page, "max_pooling2d", "output", channel, row, col)
    assert float(page.locator("#pool-max").get_attribute("data-value")) == window[i, j]


def test_the_softmax_panel_gives_the_prediction(page, server, size, tmp_path):
    probabilities = model_of(server).predict(compute.as_input(sample_test_set()[0][0]), verbose=0)[0]
    labels = page.locator(".digit-labels span")
    assert [labels.nth(k).inner_text() for k in range(10)] == [str(k) for k in range(10)]
    unit = int(np.argmax(probabilities))
    click_unit(page, "dense", unit)
    assert f"dense (Dense), unit {unit} (digit {unit})" in page.inner_text("#cell-body")
    for k in range(10):
        p = shown(page, f"softmax-p-{k}")
        assert abs(p - probabilities[k]) <= 4 * np.finfo(np.float32).eps * max(probabilities[k], 1e-30)
    assert shown(page, "cell-traced") == float(probabilities[unit])
    check_claim(page, "cell-match", shown(page, "cell-output"), probabilities[unit])
    assert page.locator("#cell-body table.terms").first.locator("tbody tr").count() == 12
    screenshot(page, tmp_path, f"explorer_softmax_{size}.png")


def test_the_keyboard_alone_reaches_a_conv_cells_arithmetic(page, server, size, tmp_path):
    """From page load, Tab to conv2d's output maps, move with the arrows, Enter, read, Escape."""
    for presses in range(1, 80):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.dataset.layer + '/' + document.activeElement.dataset.kind")
        if focused == "conv2d/output":
            break
    else:
        pytest.fail("Tab never reached conv2d's output maps")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # focus is visible
    for key in ["PageDown", "PageDown", "ArrowDown", "ArrowDown", "ArrowRight"]:
        page.keyboard.press(key)
    assert "[row 2, col 1, channel 2]" in page.inner_text(".hover >> nth=1")
    with page.expect_response(lambda response: "/api/cell" in response.url):
        page.keyboard.press("Enter")
    settle(page)
    assert "conv2d (Conv2D), row 2, col 1, channel 2" in page.inner_text("#cell-body")
    assert page.is_visible("#cell-z")
    screenshot(page, tmp_path, f"explorer_keyboard_{size}.png")
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.dataset.layer") == "conv2d"  # focus back on the map
    assert not page.locator("#cell-panel.open").count() or size == "wide"
    assert presses < 40, f"{presses} Tab presses to reach the first map"


def test_colour_scales_per_map_and_kept_across_an_edit(page, server, size):
    legend = page.locator("#maps-conv2d_1 .block >> nth=1").locator(".legend")
    before = legend.inner_text()
    page.select_option("#scale-mode", "map")
    assert "one colour scale per map" in page.locator("#maps-conv2d_1 .block >> nth=1").locator(".legend").inner_text()
    page.select_option("#scale-mode", "layer")
    assert page.locator("#maps-conv2d_1 .block >> nth=1").locator(".legend").inner_text() == before
    x0 = sample_test_set()[0][0]
    row, col = [int(v) - 1 for v in np.argwhere(x0 > 200)[0]]
    click_cell(page, "conv2d", "preactivation", 7, row, col)
    weight = page.locator("#cell-body input[data-index='1,1,0,7']")
    with page.expect_response(lambda response: "/api/analyze" in response.url):
        weight.fill("3")
        weight.press("Enter")
    settle(page)
    kept = page.locator("#maps-conv2d_1 .block >> nth=1").locator(".legend").inner_text()
    assert "kept from before your edit" in kept and kept.split(" — ")[0] == before.split(" — ")[0]
    page.click("#rescale")
    assert "kept from before" not in page.locator("#maps-conv2d_1 .block >> nth=1").locator(".legend").inner_text()


def test_editing_a_kernel_weight_recomputes_without_touching_the_file(page, server, run_dir, size):
    model_file = run_dir / runs.FINAL_MODEL
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()
    x0 = sample_test_set()[0][0]
    row, col = [int(v) - 1 for v in np.argwhere(x0 > 200)[0]]  # a window centred on ink, so the centre weight counts
    click_cell(page, "conv2d", "preactivation", 7, row, col)
    z_before = shown(page, "cell-z")
    weight = page.locator("#cell-body input[data-index='1,1,0,7']")
    with page.expect_response(lambda response: "/api/analyze" in response.url):
        weight.fill("3")
        weight.press("Enter")
    settle(page)
    edited = compute.edited_copy(model_of(server), [{"layer": "conv2d", "index": [1, 1, 0, 7], "value": 3.0}])
    expected = float(edited.trace(compute.as_input(x0))[0].preactivation[0, row, col, 7])
    assert expected != pytest.approx(z_before)
    assert shown(page, "cell-traced-z") == expected
    assert abs(shown(page, "cell-z") - expected) <= 1e-6 * max(1, abs(expected))
    assert "1 kernel weight edited" in page.inner_text("#edit-count")
    probabilities = edited.predict(compute.as_input(x0), verbose=0)[0]
    shown_p = [float(row.get_attribute("data-probability")) for row in page.locator("#probabilities tr").all()]
    np.testing.assert_allclose(shown_p, probabilities, rtol=1e-5)
    assert hashlib.sha256(model_file.read_bytes()).hexdigest() == digest
    page.click("#reset-edits")
    settle(page)
    assert shown(page, "cell-z") == z_before


def png(array, mode=None) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(page, tmp_path, name, data, route="analyze"):
    picture = tmp_path / name
    picture.write_bytes(data)
    with page.expect_response(lambda response: f"/api/{route}" in response.url) as answer:
        page.set_input_files("#upload", str(picture))
    settle(page)
    return answer.value


def test_pictures_a_learner_brings(page, server, size, tmp_path):
    from PIL import Image

    model = model_of(server)
    x, y = sample_test_set()
    predicted = np.argmax(model.predict(x[:200, :, :, None].astype("float32") / 255.0, verbose=0), axis=1)
    confident = next(k for k in range(200) if predicted[k] == y[k] and y[k] != 1)
    # Dark strokes on a transparent background (how drawing programs save): the strokes, not the alpha, are the digit.
    strokes = np.kron(x[confident], np.ones((6, 6), np.uint8))
    rgba = np.zeros((*strokes.shape, 4), np.uint8)
    rgba[..., 3] = strokes
    upload(page, tmp_path, "transparent.png", png(rgba, "RGBA"))
    image = to_mnist(np.asarray(opaque(Image.open(io.BytesIO(png(rgba, "RGBA")))).convert("L"), np.float64))
    assert page.inner_text("#prediction") == str(int(np.argmax(model.predict(compute.as_input(image), verbose=0))))
    assert page.inner_text("#prediction") == str(y[confident]) and not page.is_visible("#blank-flag")
    # A blank picture is answered, and flagged.
    upload(page, tmp_path, "blank.png", png(np.zeros((28, 28, 4), np.uint8), "RGBA"))
    assert page.is_visible("#blank-flag") and "blank or nearly so (0 ink pixels" in page.inner_text("#blank-flag")
    page.locator("#blank-flag").scroll_into_view_if_needed()
    screenshot(page, tmp_path, f"explorer_blank_{size}.png")
    # A file that is no picture is reported, and the page carries on.
    answer = upload(page, tmp_path, "junk.png", b"this is not a picture", route="upload")
    assert answer.status == 400 and "cannot read the upload" in page.inner_text("#status")


def test_mistakes_are_marked_and_stepped_through(page, server, size, tmp_path):
    model = model_of(server)
    x, y = sample_test_set()
    wrong = np.flatnonzero(np.argmax(model.predict(x[..., None].astype("float32") / 255.0, verbose=0), axis=1) != y)
    assert not page.is_visible("#mistake-flag") or int(page.input_value("#image-index")) in wrong
    page.click("#next-mistake")
    settle(page)
    assert int(page.input_value("#image-index")) == wrong[wrong > 0][0]
    assert page.is_visible("#mistake-flag") and "misclassified" in page.inner_text("#mistake-flag")
    assert page.inner_text("#mistake-count") == f"{len(wrong)} of 1000 test images misclassified"
    page.click("#next-mistake")
    settle(page)
    assert int(page.input_value("#image-index")) == wrong[wrong > 0][1]
    screenshot(page, tmp_path, f"explorer_mistake_{size}.png")


def test_the_newest_picture_wins_when_answers_cross(page, server, size, monkeypatch):
    """Two clicks on "next" while the server is slow to answer the first: the page ends on the second image,
    with its own pixels, label and prediction (an older answer never paints over a newer picture)."""
    import time

    analyze, calls = compute.analyze, []

    def slow_first(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.8)
        return analyze(*args, **kwargs)

    monkeypatch.setattr(compute, "analyze", slow_first)
    page.click("#next-image")
    page.wait_for_timeout(300)
    page.click("#next-image")
    settle(page)
    page.wait_for_function("() => document.body.dataset.busy === '0'")
    x, y = sample_test_set()
    assert page.inner_text("#input-note") == f"mnist-sample test image 2, label {y[2]}"
    np.testing.assert_array_equal(np.array(page.evaluate("state.pixels")), x[2])
    probabilities = model_of(server).predict(compute.as_input(x[2]), verbose=0)[0]
    assert page.inner_text("#prediction") == str(int(np.argmax(probabilities)))


def test_focus_stays_where_the_learner_works(page, server, size):
    x0 = sample_test_set()[0][0]
    row, col = [int(v) - 1 for v in np.argwhere(x0 > 200)[0]]
    click_cell(page, "conv2d", "preactivation", 7, row, col)
    assert page.evaluate("document.activeElement.closest('#cell-body') !== null")  # the panel took the focus
    weight = page.locator("#cell-body input[data-index='1,1,0,7']")
    with page.expect_response(lambda response: "/api/analyze" in response.url):
        weight.fill("2")
        weight.press("Enter")
    settle(page)
    page.wait_for_function("() => document.body.dataset.busy === '0'")
    assert page.evaluate("document.activeElement.dataset.index") == "1,1,0,7"  # the edited weight, redrawn
    page.focus("input[value='forward']")
    page.keyboard.press("ArrowDown")  # to "backward": the maps are rebuilt and the panel closes
    settle(page)
    assert page.evaluate("document.activeElement.value") == "backward"


def test_the_page_fits_a_phone_in_every_view(browser, server, tmp_path):
    context, page, errors = open_page(browser, server, "phone")
    assert no_horizontal_scroll(page)
    click_cell(page, "conv2d_1", "output", 9, 3, 3)
    panel = page.locator("#cell-panel").bounding_box()
    assert panel["y"] + panel["height"] <= 844 + 1 and panel["height"] <= 0.6 * 844  # a bottom sheet
    assert no_horizontal_scroll(page)
    close_panel(page)
    backward(page)
    assert no_horizontal_scroll(page)
    context.close()
    assert not errors, errors
