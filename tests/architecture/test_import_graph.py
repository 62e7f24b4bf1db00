"""The layers hold: every import in the source tree (module level or inside a function) is walked with
``ast`` and checked against the table in docs/architecture.md."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("dhs", "dhs_gen", "jobs", "training", "emr", "benchmarks")

# layer -> the project layers it may import (itself always allowed).
ALLOWED = {
    "dhs_gen": set(),
    "jobs": {"dhs_gen"},
    "training": {"dhs_gen"},
    "emr": {"dhs_gen"},
    "dhs": {"dhs_gen", "jobs", "training", "emr"},
    "benchmarks": {"dhs_gen", "jobs", "training", "emr", "dhs"},
}
# The one documented exception (docs/architecture.md): the Spark score step runs the torch scorer.
EXCEPTIONS = {("jobs/score.py", "training.eval.scoring"), ("jobs/score.py", "training.eval.figures")}


def imported_modules(path: Path):
    """Every absolute module name imported anywhere in ``path`` (with its line number)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, node.lineno


def forbidden_arrows():
    out = []
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for module, line in imported_modules(path):
                target = module.split(".")[0]
                if target in LAYERS and target != layer and target not in ALLOWED[layer] \
                        and (rel, module) not in EXCEPTIONS:
                    out.append(f"{rel}:{line} imports {module} ({layer} -> {target})")
    return out


def test_no_forbidden_import_arrows():
    assert forbidden_arrows() == []


def test_walker_sees_imports_inside_functions(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from training.export import x\n    import emr.sync\n")
    assert sorted(m for m, _ in imported_modules(src)) == ["emr.sync", "training.export"]


@pytest.mark.parametrize("layer", LAYERS)
def test_every_layer_exists(layer):
    assert (ROOT / layer / "__init__.py").exists()
