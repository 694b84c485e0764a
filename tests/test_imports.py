"""The package tree reads as the data's path: each subpackage imports alone, and no stage
imports a later one (only the CLI and `proof`, which drives all of them, see everything)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sitebeacon"
# The data's path, in order; a module may import its own stage and earlier ones.
STAGES = ("site", "plugins", "collect", "report", "proof")
SHARED = {
    "sitebeacon",
    "sitebeacon.config",
    "sitebeacon.errors",
    "sitebeacon.files",
    "sitebeacon.protocol",
}
EVERY_SUBPACKAGE = sorted(
    "sitebeacon." + ".".join(path.relative_to(PACKAGE).parent.parts)
    for path in PACKAGE.rglob("__init__.py")
    if path.parent != PACKAGE
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name == "sitebeacon" or name.startswith("sitebeacon.")}


def _stage(module: str) -> int | None:
    parts = module.split(".")
    return STAGES.index(parts[1]) if len(parts) > 1 and parts[1] in STAGES else None


@pytest.mark.parametrize("name", EVERY_SUBPACKAGE)
def test_each_subpackage_imports_alone(name: str) -> None:
    """A fresh interpreter per subpackage: a circular import fails here, whatever ran before."""
    result = subprocess.run(
        [sys.executable, "-c", f"import {name}"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_every_module_imports_alone() -> None:
    modules = sorted(_module_name(path) for path in PACKAGE.rglob("*.py"))
    modules.remove("sitebeacon.__main__")  # runs the CLI
    script = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    for module in modules:
        result = subprocess.run(
            [sys.executable, "-c", script, module], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, (module, result.stderr)


def test_no_stage_imports_a_later_one() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        own = _stage(module)
        if own is None or STAGES[own] == "proof":
            continue  # the CLI, the shared modules, old-name shims; proof drives every stage
        for imported in _imports(path) - SHARED:
            stage = _stage(imported)
            if stage is not None and stage > own:
                wrong.append(f"{module} imports {imported}")
    assert wrong == []


def test_shared_modules_import_no_stage() -> None:
    for name in SHARED - {"sitebeacon"}:
        path = PACKAGE / (name.split(".")[1] + ".py")
        assert {_stage(imported) for imported in _imports(path)} <= {None}, name
