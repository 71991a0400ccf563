"""The explorer page on a graph model (strided, dilated-grouped, depthwise, transposed conv, Add, Concatenate), in
headless chromium at 1280x900 and 390x844: every call is listed with its inputs and drawn in the graph, and the
one-value panel explains the graph's own layers with the model's numbers."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("flask", reason="the explorer needs the optional [explorer] extra (Flask)")

from conftest import graph_tour_model  # noqa: E402
from explorer_page import (  # noqa: E402
    SIZES, browser, check_claim, click_cell, click_weight, no_horizontal_scroll, open_page, screenshot, settle, shown,
)
from convscope.datasets import mnist_sample
from convscope.explorer import compute
from convscope.explorer.server import ExplorerServer
from convscope.explorer.workspace import Workspace

__all__ = ["browser"]  # a fixture, imported for pytest
CALLS = ["strided", "dilated", "dw", "proj", "add", "maxp", "tconv", "cat", "avg", "block/inner_conv", "block/inner_relu",
         "block", "flat", "out"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model = graph_tour_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    path = tmp_path_factory.mktemp("explorer-graph") / "graph_tour.convscope"
    model.save(path)
    running = ExplorerServer(Workspace(path, "mnist-sample", announce=lambda message: None)).start()
    yield running
    running.stop()


@pytest.fixture(params=list(SIZES))
def size(request):
    return request.param


@pytest.fixture
def page(browser, server, size):
    context, page, errors = open_page(browser, server, size)
    yield page
    context.close()
    assert not errors, errors


@pytest.fixture
def records(server):
    x, y = mnist_sample.load_data()[1]
    model = server.app.config["EXPLORER_WORKSPACE"].model
    return {r.call: r for r in model.trace(compute.as_input(x[0]), np.array([y[0]]))}


def test_every_call_is_listed_with_its_inputs_and_drawn(page, size, tmp_path):
    items = page.locator("#layer-list li")
    assert [" ".join(items.nth(k).text_content().split()).split(" ")[0] for k in range(items.count())] == CALLS
    add = " ".join(items.nth(CALLS.index("add")).text_content().split())
    assert "← dilated, proj" in add and "Add" in add
    assert "← tconv, add" in " ".join(items.nth(CALLS.index("cat")).text_content().split())
    assert "← block/inner_relu" in " ".join(items.nth(CALLS.index("block")).text_content().split())  # nested
    nodes = page.locator("#graph .graph-node")
    assert sorted(nodes.nth(k).get_attribute("data-call") for k in range(nodes.count())) == sorted(CALLS)
    assert page.locator("#graph .graph-node.merge").count() == 2  # add and cat
    assert no_horizontal_scroll(page)
    screenshot(page, tmp_path, f"explorer_graph_{size}.png")
    # Picking a node of the graph goes to that layer's maps and gives them the keyboard focus.
    page.locator("#graph .graph-node[data-call='cat']").click()
    assert page.evaluate("document.activeElement.dataset.layer") == "cat"


def test_an_add_cell_says_where_each_number_came_from(page, records, size, tmp_path):
    click_cell(page, "add", "output", 1, 2, 3)
    text = page.inner_text("#cell-body")
    assert "add (Add), row 2, col 3, channel 1" in text and "dilated + proj" in text
    assert shown(page, "merge-value-0") == float(records["dilated"].output[0, 2, 3, 1])
    assert shown(page, "merge-value-1") == float(records["proj"].output[0, 2, 3, 1])
    assert shown(page, "cell-output") == shown(page, "cell-traced") == float(records["add"].output[0, 2, 3, 1])
    assert page.inner_text("#cell-match").startswith("✓")
    assert no_horizontal_scroll(page)
    screenshot(page, tmp_path, f"explorer_add_{size}.png")


def test_concatenate_depthwise_and_transposed_cells(page, records, size, tmp_path):
    click_cell(page, "cat", "output", 4, 3, 3)  # tconv has 3 channels, so channel 4 is add's channel 1
    assert "This number is add[3, 3, 1]." in page.inner_text("#cell-body")
    assert shown(page, "cell-output") == float(records["add"].output[0, 3, 3, 1])
    click_cell(page, "dw", "output", 5, 6, 7)
    assert "output channel 5 reads input channel 2 only" in page.inner_text("#cell-body")
    z = shown(page, "cell-z")
    assert abs(z - float(records["dw"].preactivation[0, 6, 7, 5])) <= 1e-6 * max(1, abs(z))
    check_claim(page, "cell-z-match", z, shown(page, "cell-traced-z"))
    click_cell(page, "tconv", "output", 2, 4, 5)
    text = page.inner_text("#cell-body")
    assert "scatters" in text and "no input cell lands here" not in text  # the note is a tooltip, not text
    assert page.locator("#cell-body table.taps td.pad").count() >= 5  # stride 2: most of the 9 taps land between cells
    z = shown(page, "cell-z")
    assert abs(z - float(records["tconv"].preactivation[0, 4, 5, 2])) <= 1e-6 * max(1, abs(z))
    screenshot(page, tmp_path, f"explorer_transpose_{size}.png")


def test_a_depthwise_kernel_gradient_on_the_graph(page, records, size):
    page.check("#mode-backward")
    settle(page)
    page.wait_for_selector(".map-grid canvas[data-layer='dw'][data-kind='kernel_gradient']")
    click_weight(page, "dw", (0, 1, 2, 1))
    expected = float(records["dw"].param_grads["kernel"][0, 1, 2, 1])
    assert shown(page, "grad-traced") == expected
    assert abs(shown(page, "grad-sum") - expected) <= 1e-6 * max(1e-2, abs(expected))
    check_claim(page, "grad-match", shown(page, "grad-sum"), expected)


def test_names_with_quotes_and_brackets_are_data(browser, tmp_path):
    """Layer names come from the file: a name with quotes, brackets and a backslash is shown as text, selected and
    explained like any other (the page never builds a selector or markup from it unescaped)."""
    import convscope
    from convscope import layers

    name = 'c"o[n]v\\1\'</b>'
    inputs = convscope.Input(shape=(28, 28, 1))
    x = layers.Conv2D(2, 3, activation="relu", name=name)(inputs)
    net = convscope.Model(inputs, layers.Dense(10, activation="softmax", name="out")(layers.Flatten(name="flat")(x)))
    path = tmp_path / "quoted.convscope"
    net.save(path)
    server = ExplorerServer(Workspace(path, "mnist-sample", announce=lambda message: None)).start()
    try:
        context, page, errors = open_page(browser, server, "wide")
        assert page.locator("#layer-list li").first.text_content().startswith(name)
        click_cell(page, name, "output", 1, 3, 4)
        assert f"{name} (Conv2D), row 3, col 4, channel 1" in page.inner_text("#cell-body")
        assert page.locator("#maps .selected-map").count() == 1
        context.close()
        assert not errors, errors
    finally:
        server.stop()
