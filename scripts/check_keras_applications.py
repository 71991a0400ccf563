"""Print how convscope reads the ``keras.applications`` fixtures: the table of issue 13's "Must show 1".

    CONVSCOPE_DATA=... python scripts/check_keras_applications.py

One row per fixture of ``scripts/make_keras_applications_fixtures.py`` found (committed ones in
``tests/fixtures/applications/``, the large ones in ``$CONVSCOPE_APPLICATIONS_CACHE``, default
``~/.cache/convscope-applications``): its layers (nested models' included) and parameters, the
largest |convscope - Keras| on its outputs, the worst layer call (largest difference relative to
the size of Keras's output at that layer), whether the summary totals are Keras's, what real Keras
predicted after loading convscope's ``.keras`` export (recorded by the fixture script) against
convscope's prediction, and onnxruntime on convscope's ONNX export against convscope. Needs
onnxruntime (the [test] extra); exits 1 if any check exceeds its tolerance.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import test_keras_applications as fixtures  # noqa: E402 -- the tests' readers and comparisons

import onnxruntime as ort  # noqa: E402

from convscope.interop import export_onnx  # noqa: E402


def every_layer(model):
    for layer in model.layers:
        yield layer
        yield from every_layer(layer) if hasattr(layer, "layers") else ()


def onnx_difference(model, arrays, folder: Path) -> float:
    path = folder / f"{model.name}.onnx"
    export_onnx(model, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    theirs = session.run(None, dict(zip([i.name for i in session.get_inputs()], fixtures.listed(arrays, "x"))))
    return fixtures.max_difference(theirs, fixtures.predictions(model, arrays))


def row(name: str, folder: Path) -> tuple[list[str], bool]:
    model, arrays, keras_info = fixtures.fixture(name)
    ours = fixtures.predictions(model, arrays)
    floor = fixtures.max_difference(ours, fixtures.exact(name)[0])  # float32 rounding alone: convscope f32 - f64
    slack = fixtures.float32_slack(name, ours)
    outputs = fixtures.max_difference(ours, fixtures.listed(arrays, "y"))
    call, relative, layer_slack = fixtures.worst_layer(model, arrays, name)
    lines = []
    model.summary(print_fn=lines.append)
    totals = [line.strip() for line in "\n".join(lines).splitlines()[-3:]] == keras_info["summary"]["lines"]
    exported = fixtures.max_difference(ours, fixtures.listed(arrays, "exported"))
    onnx = onnx_difference(model, arrays, folder)
    onnx_slack = max(1e-5, 3 * floor)
    ok = outputs <= slack and relative <= layer_slack and totals and exported <= slack and onnx <= onnx_slack
    cells = [name, f"{sum(1 for _ in every_layer(model))}", f"{model.count_params():,}", f"{outputs:.2e}",
             f"{relative:.2e} ({call})", "yes" if totals else "NO", f"{exported:.2e}", f"{onnx:.2e}", f"{floor:.2e}"]
    return cells, ok


def main() -> int:
    header = ["fixture", "layers", "parameters", "max |convscope - Keras|", "worst intermediate (relative)",
              "summary totals equal", ".keras export reloaded by Keras", "ONNX via onnxruntime",
              "float32 rounding (convscope f32 - f64)"]
    rows, failed = [], []
    with tempfile.TemporaryDirectory() as out:
        for name in fixtures.ALL:
            folder = fixtures.CACHE if name in fixtures.CACHED else fixtures.COMMITTED
            if not (folder / f"{name}.keras").exists():
                print(f"{name}: not in {folder}, skipped")
                continue
            cells, ok = row(name, Path(out))
            rows.append(cells)
            if not ok:
                failed.append(name)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths)))
    print(f"tolerances: outputs and layers {', '.join(f'{k} {v:g}' for k, v in fixtures.TOLERANCE.items())}, ONNX "
          "1e-5; or 3x the float32 rounding where that is larger (last column; layers: the same per layer)"
          + (f"; OVER: {', '.join(failed)}" if failed else "; all within"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
