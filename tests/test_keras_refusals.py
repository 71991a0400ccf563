"""Keras files convscope must refuse: each ends in a ``ModelFileError`` that names the offending layer,
connection, weight or member and lists what is supported; nothing from the file runs.

The base files in ``fixtures/refusals/`` are a tiny functional model written by Keras 3.15
(``fixtures/refusals/make_fixtures.py``), as ``.keras`` and legacy ``.h5``, with Keras's own specs of a
Lambda, a registered custom layer and an LSTM (``foreign_specs.json``). Each hostile file is a copy of a
base with one thing edited (a layer spec spliced in, a connection renamed, a weight replaced, the config
garbled), so these tests need no Keras. ``test_interop_keras.py`` refuses the same kinds of layers in a
Sequential file, and ``test_fuzz_corpus.py`` damaged archives; here the graph is functional, the refused
layer sits among merges, and the legacy ``.h5`` form is checked beside the ``.keras`` one.

Also: ``convscope summary`` of the base prints what Keras's ``model.summary()`` printed for it
(``base_summary.txt``): the same rows, connections and totals.
"""

from __future__ import annotations

import builtins
import importlib
import io
import json
import marshal
import pickle
import re
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import convscope
from convscope.cli import main
from convscope.errors import ModelFileError
from convscope.interop import load_keras
from convscope.interop.keras_config import KERAS_CLASSES

pytestmark = pytest.mark.usefixtures("fresh_state")

h5py = pytest.importorskip("h5py", reason="h5py is the optional [interop] extra that reads Keras files")

FIXTURES = Path(__file__).parent / "fixtures" / "refusals"
FOREIGN = json.loads((FIXTURES / "foreign_specs.json").read_text())
FORMS = ("keras", "h5")
PROBE_MODULE = "convscope_refusal_probe"


# ------------------------------------------------------------------------------------ hostile copies


def hostile_copy(tmp_path, form, edit_layers=None, edit_weights=None, raw_config=None) -> Path:
    """A copy of ``base.<form>`` with its layer specs, its weights or its whole config replaced.

    ``edit_layers(specs)`` edits the list of layer specs in place; ``edit_weights(f, form)`` the open
    weights HDF5 (``model.weights.h5`` of the archive, or the legacy file itself); ``raw_config`` replaces
    ``config.json`` / the ``model_config`` attribute byte for byte.
    """
    path = tmp_path / f"hostile.{form}"
    if form == "keras":
        with zipfile.ZipFile(FIXTURES / "base.keras") as zf:
            members = {name: zf.read(name) for name in zf.namelist()}
        if edit_layers:
            config = json.loads(members["config.json"])
            edit_layers(config["config"]["layers"])
            members["config.json"] = json.dumps(config).encode()
        if raw_config is not None:
            members["config.json"] = raw_config
        if edit_weights:
            buffer = io.BytesIO(members["model.weights.h5"])
            with h5py.File(buffer, "a") as f:
                edit_weights(f, form)
            members["model.weights.h5"] = buffer.getvalue()
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        return path
    path.write_bytes((FIXTURES / "base.h5").read_bytes())
    with h5py.File(path, "a") as f:
        if edit_layers:
            config = json.loads(f.attrs["model_config"])
            edit_layers(config["config"]["layers"])
            f.attrs["model_config"] = json.dumps(config)
        if raw_config is not None:
            f.attrs["model_config"] = raw_config.decode()
        if edit_weights:
            edit_weights(f, form)
    return path


def spec_of(specs, name):
    return next(spec for spec in specs if spec["name"] == name)


def head_becomes(kind, form, **changes):
    """Replace the Dense head by Keras's own spec of a ``kind`` layer (same name, same input)."""
    def edit(specs):
        index = [spec["name"] for spec in specs].index("head")
        specs[index] = {**FOREIGN[form][kind], **changes, "inbound_nodes": specs[index]["inbound_nodes"]}
    return edit


def reads_from(layer, history):
    """Make ``layer``'s only call read the tensor ``history`` = [layer name, call, output index]."""
    def edit(specs):
        spec_of(specs, layer)["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = history
    return edit


def head_kernel(shape):
    def edit(f, form):
        key = "layers/dense/vars/0" if form == "keras" else "model_weights/head/head/kernel"
        del f[key]
        f[key] = np.zeros(shape, "float32")
    return edit


NOT_JSON = b"{'class_name': 'Functional', 'config': {"  # Python's repr of a dict: single quotes, cut short
LAYERS_LISTED = "image, conv_b, conv_a, bn, join, stack, pool, head"
CASES = {
    "lambda": (lambda form: dict(edit_layers=head_becomes("lambda", form)),
               r'layer "head" is a Lambda layer: it holds Python code, which convscope never runs from a file\. '
               r"Supported layers: Activation, AveragePooling2D, "),
    "custom-class": (lambda form: dict(edit_layers=head_becomes("custom", form)),
                     {"keras": r"""layer "head": 'Scale' is a custom class \(module None, registered as """
                               r"""'refusal_probe>Scale'\), whose code is not in the file and which convscope """
                               r"never imports; convscope reads only built-in Keras layers: Activation, ",
                      "h5": r"""layer "head": 'refusal_probe>Scale' is a custom class \(module None, registered """
                            r"""as 'refusal_probe>Scale'\), whose code is not in the file"""}),
    "lstm": (lambda form: dict(edit_layers=head_becomes("lstm", form)),
             r'layer "head" has type LSTM, which convscope does not support\. Supported layers: Activation, '),
    "missing-layer": (lambda form: dict(edit_layers=reads_from("head", ["ghost", 0, 0])),
                      r"""layer "head", call 0 reads from layer 'ghost', which the file does not define; """
                      rf"its layers are: {LAYERS_LISTED}$"),
    "missing-call": (lambda form: dict(edit_layers=reads_from("head", ["pool", 3, 0])),
                     r'layer "head", call 0 reads call 3 of layer "pool", which the file calls 1 time\(s\)'),
    "cycle": (lambda form: dict(edit_layers=reads_from("conv_a", ["join", 0, 0])),
              r'the graph has a cycle: "conv_a" call 0 -> "join" call 0 -> "conv_a" call 0 \(each call reads the '
              r"output of the next\), so nothing in it can be computed"),
    "self-loop": (lambda form: dict(edit_layers=reads_from("conv_a", ["conv_a", 0, 0])),
                  r'the graph has a cycle: "conv_a" call 0 -> "conv_a" call 0 \('),
    "wrong-shape": (lambda form: dict(edit_weights=head_kernel((5, 3))),
                    r'weight "kernel" of layer "head" has shape \(5, 3\) in the file, the model needs \(5, 4\)$'),
    "config-not-json": (lambda form: dict(raw_config=NOT_JSON),
                        {"keras": r": config\.json is not valid JSON \(Expecting property name enclosed in double "
                                  r"quotes: line 1 column 2 \(char 1\)\); a Keras model file describes its model "
                                  r"in JSON",
                         "h5": r": the model_config attribute is not valid JSON \(Expecting property name"}),
}
NAMES_A_LAYER = ("lambda", "custom-class", "lstm")


def refusal(path) -> str:
    """The message ``load_model`` refuses ``path`` with (and ``load_keras`` must say the same)."""
    with pytest.raises(ModelFileError) as caught:
        convscope.load_model(path)
    with pytest.raises(ModelFileError, match=re.escape(str(caught.value))):
        load_keras(path, compile=False)
    return str(caught.value)


@pytest.mark.parametrize("form", FORMS)
def test_the_unedited_base_loads_and_computes_as_keras(form):
    """So that each refusal below is due to its one edit."""
    expected = np.load(FIXTURES / "base_outputs.npz")
    model = convscope.load_model(FIXTURES / f"base.{form}")
    assert [layer.name for layer in model.layers] == LAYERS_LISTED.split(", ")
    np.testing.assert_allclose(model.predict(expected["x"], verbose=0), expected["y"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", CASES)
def test_hostile_file_is_refused_naming_what_and_listing_what_is_supported(tmp_path, case, form):
    edit, pattern = CASES[case]
    path = hostile_copy(tmp_path, form, **edit(form))
    message = refusal(path)
    pattern = pattern[form] if isinstance(pattern, dict) else pattern
    assert message.startswith(repr(str(path))), message  # the file is named first
    assert re.search(pattern, message), message
    if case in NAMES_A_LAYER:
        # Every layer convscope reads is listed, the merging ones (functional models only) too.
        listed = set(re.findall(r"\b[A-Z]\w+", message.split("layers: ", 1)[1]))
        assert set(KERAS_CLASSES) <= listed, sorted(set(KERAS_CLASSES) - listed)
        assert "merging layers Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract" in message


# ------------------------------------------------------------------------------- nothing from the file runs


@pytest.fixture
def code_runs(monkeypatch, tmp_path):
    """The calls that would run code a file carries: unmarshalling (Lambda's bytecode), unpickling,
    exec / eval / compile, importing a module by name. Each is recorded, then let through."""
    seen = []

    def spy(owner, name):
        real = getattr(owner, name)

        def recorded(*args, **kwargs):
            seen.append(name)
            return real(*args, **kwargs)
        monkeypatch.setattr(owner, name, recorded)

    convscope.load_model(FIXTURES / "base.keras")  # convscope's own lazy imports happen here, not below
    convscope.load_model(FIXTURES / "base.h5")
    for owner, name in [(marshal, "loads"), (pickle, "loads"), (builtins, "exec"), (builtins, "eval"),
                        (builtins, "compile"), (importlib, "import_module")]:
        spy(owner, name)
    # A module that says so if imported, named by the custom class below.
    (tmp_path / f"{PROBE_MODULE}.py").write_text(
        f"from pathlib import Path\nPath({str(tmp_path / 'imported')!r}).write_text('ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return seen


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("kind", ["lambda", "custom"])
def test_nothing_from_a_refused_file_runs(tmp_path, code_runs, kind, form):
    # The registered class's spec names a module that exists here; Keras would import it.
    changes = {"module": PROBE_MODULE} if kind == "custom" else {}
    path = hostile_copy(tmp_path, form, edit_layers=head_becomes(kind, form, **changes))
    assert "code" in json.dumps(FOREIGN[form]["lambda"]["config"]["function"])  # Keras's marshalled bytecode
    with pytest.raises(ModelFileError, match="Lambda layer|custom class"):
        convscope.load_model(path)
    assert code_runs == []
    assert PROBE_MODULE not in sys.modules
    assert not (tmp_path / "imported").exists()


def test_the_spy_sees_code_run(tmp_path, code_runs):
    """The spy above can fail: importing the probe module is seen (by name, and its code's exec), and it runs."""
    try:
        importlib.import_module(PROBE_MODULE)
        assert {"import_module", "exec"} <= set(code_runs), code_runs
        assert (tmp_path / "imported").read_text() == "ran"
    finally:
        sys.modules.pop(PROBE_MODULE, None)


# ------------------------------------------------------------------------------------ summary as Keras prints it


def summary_table(text: str) -> tuple[list, list]:
    """(rows as [layer (type), output shape, params, connections], the three totals lines) of a printed summary.

    A row's cells may wrap onto further lines (first cell empty): they are joined to the row's.
    """
    rows = []
    for line in text.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        if cells[0] or not rows:
            rows.append(cells)
        else:
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells)]
    totals = [line.strip() for line in text.splitlines()
              if re.match(r"\s*(Total|Trainable|Non-trainable) params:", line)]
    return rows, totals


@pytest.mark.parametrize("form", FORMS)
def test_summary_prints_what_keras_printed(capsys, form):
    keras_rows, keras_totals = summary_table((FIXTURES / "base_summary.txt").read_text())
    assert main(["summary", str(FIXTURES / f"base.{form}")]) == 0
    ours, our_totals = summary_table(capsys.readouterr().out)
    assert [len(row) for row in keras_rows] == [4] * 8  # the table has the "Connected to" column
    assert ours == keras_rows
    assert our_totals == keras_totals == [
        "Total params: 102 (408.00 B)", "Trainable params: 96 (384.00 B)", "Non-trainable params: 6 (24.00 B)"]
    assert ["join (Add)", "(None, 6, 6, 3)", "0", "conv_a[0][0], bn[0][0]"] in ours


def test_summary_table_reader_joins_wrapped_rows():
    text = "│ a (Add)   │ (None, 2) │ 0 │ x[0][0],  │\n│           │           │   │ y[0][0]   │\n"
    assert summary_table(text) == ([["a (Add)", "(None, 2)", "0", "x[0][0], y[0][0]"]], [])
