"""The import rules of docs/architecture.md: import-linter's contracts in pyproject.toml, run here
so CI checks them, and, with ``ast``, what import-linter cannot see: app.py (a module, not a
package) and imports by bare file name through a ``sys.path`` entry (``import home`` beside
pages/home.py; tests/ put on ``sys.path`` by a bench or a script, as bench/serve_cost.py once did).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    assert lint_imports.exists(), f"{lint_imports} is missing: pip install -r requirements-dev.txt"
    run = subprocess.run([str(lint_imports), "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    contracts = len(CONFIG["contracts"])
    assert contracts >= 5
    assert f"Contracts: {contracts} kept, 0 broken." in output, output


def test_root_packages_are_this_checkout() -> None:
    """pages, bench and scripts are namespace packages, which any installed package of the same name
    would shadow (tf-keras-vis installs one named ``tests``): lint-imports would then check it instead."""
    where = subprocess.run(
        [sys.executable, "-c", "import importlib.util, json, sys; print(json.dumps({name: "
         "list(importlib.util.find_spec(name).submodule_search_locations) for name in sys.argv[1:]}))",
         *CONFIG["root_packages"]], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60)
    for name, locations in json.loads(where.stdout).items():
        assert {Path(location).resolve() for location in locations} == {ROOT / name}, (name, locations)


def imported(path: Path) -> set[str]:
    """The absolute imports of a file, as dotted names (``from a import b`` gives ``a`` and ``a.b``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def module_names(folder: Path) -> set[str]:
    """What ``import NAME`` finds in ``folder`` when it is on ``sys.path``."""
    return {path.stem for path in folder.glob("*.py")} | {path.parent.name for path in folder.glob("*/__init__.py")}


def test_app_imports_no_page_nor_tools() -> None:
    """app.py sits with the pages: it may import convvis_ui and convvis_core, never a page."""
    tops = {name.split(".")[0] for name in imported(ROOT / "app.py")}
    assert not tops & ({"pages", "convvis_testing", "tests", "bench", "scripts"} | module_names(ROOT / "pages"))


def test_no_bare_name_imports_around_the_contracts() -> None:
    """A page imports no other page by file name; bench, scripts and convvis_testing import no
    module of tests/ by file name (tests/ on sys.path)."""
    rules = {"pages": module_names(ROOT / "pages"), "bench": module_names(ROOT / "tests"),
             "scripts": module_names(ROOT / "tests"), "convvis_testing": module_names(ROOT / "tests")}
    broken = [f"{path.relative_to(ROOT)} imports {name}"
              for folder, forbidden in rules.items() for path in sorted((ROOT / folder).glob("**/*.py"))
              for name in sorted(imported(path)) if name.split(".")[0] in forbidden - {path.stem}]
    assert not broken, broken
