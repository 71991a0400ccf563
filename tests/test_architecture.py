"""The package's layering, as docs/architecture.md states it, held by parsing every import in src/convscope.

Each top-level module or package has a rank; a module may import only modules of a lower
rank (its own package's modules aside). So data flows one way: ``arraymath`` knows nothing of
layers, layers nothing of models, the engine nothing of the files and tools built on it
(no ``models -> interop`` or ``saving -> interop``), and there can be no import cycle.
Imports inside functions count too: a lazy import is still a dependency.
"""

import ast
import pathlib
import sys

import convscope

RANKS = {
    # the foundations: the array namespace, error classes, the format registry, the version
    "backend": 0, "errors": 0, "formats": 0, "keras_objects": 0, "budget": 0, "atomic": 0, "__version__": 0,
    "blas_env": 0,
    # pure math and the objects layers are made of
    "arraymath": 1, "config": 1, "activations": 1, "initializers": 1, "losses": 1, "schedules": 1, "utils": 1,
    "regularizers": 1, "constraints": 1,
    "optimizers": 2,
    "metrics": 2, "layers": 2,
    # the engine
    "fusion": 3, "callbacks": 3, "ops": 3, "random": 3,
    "models": 4,
    # files and data
    "saving": 5, "datasets": 5, "images": 5,
    # tools built on the public API
    "interop": 6, "zoo": 6,
    "runs": 7,
    "viz": 8, "cli": 8,
    "explorer": 9, "lessons": 9,
    "__init__": 10, "__main__": 10,
}
ROOT = pathlib.Path(convscope.__file__).parent


def _imports(path: pathlib.Path):
    """(importing top-level unit, imported top-level unit, line) for every convscope import in ``path``."""
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)  # ["convscope", ..., module]
    package = parts[:-1]  # what a relative import is relative to (a package's __init__ included)
    unit = parts[1] if len(parts) > 2 or parts[1] != "__init__" else "__init__"
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = [*base, *(node.module.split(".") if node.module else [])]
                targets = [module] if node.module else [[*module, alias.name] for alias in node.names]
            elif node.module and node.module.startswith("convscope"):
                targets = [node.module.split(".")]
        elif isinstance(node, ast.Import):
            targets = [alias.name.split(".") for alias in node.names if alias.name.startswith("convscope")]
        for target in targets:
            if target[0] != "convscope":
                continue
            yield unit, (target[1] if len(target) > 1 else "__init__"), node.lineno


def test_every_unit_has_a_rank():
    units = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    assert units - set(RANKS) == set(), f"give these a rank in RANKS and docs/architecture.md: {units - set(RANKS)}"


def test_imports_only_go_down():
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        for unit, imported, line in _imports(path):
            if imported != unit and RANKS[imported] >= RANKS[unit]:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {unit} (rank {RANKS[unit]}) imports {imported} "
                             f"(rank {RANKS[imported]})")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    """The walk must be able to fail: a file under arraymath/ importing models is reported."""
    fake_root = tmp_path / "convscope"
    (fake_root / "arraymath").mkdir(parents=True)
    (fake_root / "__init__.py").write_text("")
    (fake_root / "arraymath" / "__init__.py").write_text("")
    (fake_root / "arraymath" / "bad.py").write_text("def f():\n    from ..models import Model\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake_root)
    found = list(_imports(fake_root / "arraymath" / "bad.py"))
    assert found == [("arraymath", "models", 2)]
