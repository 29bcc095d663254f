"""The import rules of docs/architecture.md: import-linter's contracts in pyproject.toml, run here
so CI checks them, and, with ``ast``, what import-linter cannot see: app.py (a module, not a
package) and imports by bare file name through a ``sys.path`` entry (``import home`` beside
pages/home.py; tests/ put on ``sys.path`` by a bench or a script, as bench/serve_cost.py once did);
and that the tests of the core import no UI code.
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


# --- Tests of the core import no UI code ----------------------------------------------------------
# A test that drives a page (AppTest, a browser) or imports UI code lives in a UI test file: one of
# UI_TEST_FILES, or one named after the page(s) it drives, test_<page>_page.py or test_<topic>_pages.py.
# Every other test file tests the core and imports UI code nowhere, not even inside a function, so the
# core's tests run, and fail, on their own.

# test_bad_inputs.py runs every hostile input through the core and through its page, case by case, on purpose.
UI_TEST_FILES = {"test_app.py", "test_bad_inputs.py", "test_browser.py", "test_cached_views.py", "test_concurrency.py",
                 "test_keras_state.py"}
UI_MODULES = ("convvis_ui", "streamlit", "app_session", "pages", "convvis_testing.browser")
IMPORTING_CALLS = {"import_module", "importorskip", "__import__"}  # importlib's, pytest's, the builtin


def ui_test_file(path: Path) -> bool:
    return path.name in UI_TEST_FILES or path.name.endswith(("_page.py", "_pages.py"))


def ui_module(name: str) -> bool:
    return any(name == module or name.startswith(f"{module}.") for module in UI_MODULES)


def local_module(name: str, tests: Path) -> Path | None:
    """The file in tests/ that an import of ``name`` reaches (a shared test module: ``bad_inputs.corpus``,
    ``test_cam``), or None."""
    for candidate in (tests / f"{name.replace('.', '/')}.py", tests / name.replace(".", "/") / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def ui_imports(path: Path, root: Path = ROOT, seen: set[Path] | None = None) -> list[str]:
    """Where a file imports UI code, at any depth, also through the shared test modules it imports:
    ``file:line imports name`` (``… through module`` for one of those)."""
    seen = set() if seen is None else seen
    seen.add(path)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) in IMPORTING_CALLS):
            names = [node.args[0].value]
        else:
            continue
        name = next((name for name in names if ui_module(name)), None)
        if name:
            found.append((node.lineno, f"{path.relative_to(root)}:{node.lineno} imports {name}"))
        for local in {local_module(name, root / "tests") for name in names} - {None} - seen:
            if ui_imports(local, root, seen):
                found.append((node.lineno, f"{path.relative_to(root)}:{node.lineno} imports UI code through "
                                           f"{local.relative_to(root)}"))
    return [where for _, where in sorted(found)]


def test_tests_of_the_core_import_no_ui_code() -> None:
    broken = [found for path in sorted((ROOT / "tests").glob("test_*.py")) if not ui_test_file(path)
              for found in ui_imports(path)]
    assert not broken, ("move these tests to a UI test file (test_<page>_page.py):\n" + "\n".join(broken))


def test_the_ui_import_check_catches_what_it_is_for(tmp_path: Path) -> None:
    """The check itself, on a small file: UI imports at the top, in a function, by a call; the core's allowed."""
    source = ("import streamlit as st\n"
              "from convvis_core.topk import scan\n"
              "from convvis_testing import browser\n"
              "import pagesize, streamlit_webrtc\n"
              "def test_page():\n"
              "    from app_session import app_on\n"
              "    from convvis_ui.pickers import layer_key\n"
              "    importlib.import_module('pages.home')\n"
              "    pytest.importorskip('convvis_testing.camera')\n"
              "    return __import__('streamlit.testing.v1')\n")
    path = tmp_path / "test_mixed.py"
    path.write_text(source)
    assert ui_imports(path, tmp_path) == [
        "test_mixed.py:1 imports streamlit", "test_mixed.py:3 imports convvis_testing.browser",
        "test_mixed.py:6 imports app_session", "test_mixed.py:7 imports convvis_ui.pickers",
        "test_mixed.py:8 imports pages.home", "test_mixed.py:10 imports streamlit.testing.v1"]
    (tmp_path / "tests" / "shared").mkdir(parents=True)  # a shared test module that drives a page, imported
    (tmp_path / "tests" / "shared" / "pages_helper.py").write_text("def open_page():\n    from app_session import app_on\n")
    (tmp_path / "tests" / "plain.py").write_text("import numpy\n")
    path.write_text("import plain\nfrom shared.pages_helper import open_page\n")
    assert ui_imports(path, tmp_path) == ["test_mixed.py:2 imports UI code through tests/shared/pages_helper.py"]
    assert [ui_test_file(Path(name)) for name in ("test_heatmaps_page.py", "test_atlas_pages.py", "test_app.py",
                                                  "test_cam.py", "test_homepage.py", "test_page_sizes.py")] == [
        True, True, True, False, False, False]


def test_no_bare_name_imports_around_the_contracts() -> None:
    """A page imports no other page by file name; bench, scripts and convvis_testing import no
    module of tests/ by file name (tests/ on sys.path)."""
    rules = {"pages": module_names(ROOT / "pages"), "bench": module_names(ROOT / "tests"),
             "scripts": module_names(ROOT / "tests"), "convvis_testing": module_names(ROOT / "tests")}
    broken = [f"{path.relative_to(ROOT)} imports {name}"
              for folder, forbidden in rules.items() for path in sorted((ROOT / folder).glob("**/*.py"))
              for name in sorted(imported(path)) if name.split(".")[0] in forbidden - {path.stem}]
    assert not broken, broken


# --- No private access across modules -------------------------------------------------------------
# A name that starts with one underscore belongs to the module that defines it. Another module (a test
# included) uses the public name of a module's contract, a public function, or a public counter
# (convvis_core/counters.py), never ``from m import _x``, ``m._x`` or ``obj._x`` on another module's object.

CHECKED = ("app.py", "convvis_core", "convvis_ui", "pages", "convvis_testing", "tests", "bench", "scripts")

# Private attributes of third-party libraries that the code must use, each with why. Nothing of
# ConvVis belongs here: make the name public instead.
KERAS_ADAPTER = ("convvis_core/keras_internals.py", "tests/test_keras_internals.py")  # the adapter and its test
THIRD_PARTY_PRIVATE = {  # name -> (why, the files allowed to use it)
    # Keras 3 keeps a functional model's graph only in private attributes: the tensor's producing
    # (operation, node, index), an operation's inbound nodes, and the node-by-node re-run with a
    # replaced operation. Only the adapter reads them, so a Keras upgrade breaks one file, loudly.
    "_keras_history": ("keras: the operation that made a tensor", KERAS_ADAPTER),
    "_inbound_nodes": ("keras: an operation's nodes in the graph", KERAS_ADAPTER),
    "_run_through_graph": ("keras: a functional model's graph re-run with operations replaced",
                           KERAS_ADAPTER),
    "_call_context_args": ("keras: whether an operation takes `training`", KERAS_ADAPTER),
    # Streamlit's Runtime is a process singleton; test_concurrency.py runs several AppTest sessions in
    # one Runtime, as a server does, by setting it for the length of the test and restoring it.
    "_instance": ("streamlit: Runtime._instance, the process's runtime", ("tests/test_concurrency.py",)),
}


def allowed_here(name: str, path: Path, root: Path) -> bool:
    """A third party's private name, in a file that may use it."""
    return name in THIRD_PARTY_PRIVATE and path.relative_to(root).as_posix() in THIRD_PARTY_PRIVATE[name][1]


# Underscore names that are public by the language's or a protocol's documentation.
PUBLIC_BY_PROTOCOL = {"_asdict", "_replace", "_fields", "_make", "_field_defaults",  # namedtuple's API
                      "_exit"}  # os._exit: documented, for a child process that must not run cleanup


def private(name: str) -> bool:
    """One leading underscore, not a dunder (``__x__``) nor a sunder protocol name (``_repr_html_``)."""
    return name.startswith("_") and not name.endswith("_") and name not in PUBLIC_BY_PROTOCOL


def defined_here(tree: ast.Module) -> set[str]:
    """The private names a module defines: functions, classes, module and class variables, and the
    attributes its classes set on ``self``/``cls`` (so ``other._x`` on an object of its own class is allowed)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
              and isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"}):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "__setattr__"
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)):  # frozen dataclasses
            names.add(str(node.args[1].value))
    return {name for name in names if private(name)}


def private_string_target(node: ast.Call) -> str | None:
    """``getattr(x, "_y")``, ``setattr``, ``monkeypatch.setattr(x, "_y", ...)``, ``patch("a.b._c")``:
    the private name a call reaches by string, if any."""
    func = node.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    strings = [arg.value for arg in node.args[:2] if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
    if name in {"getattr", "setattr", "hasattr", "delattr"}:
        return next((s for s in strings if private(s)), None)
    if name in {"patch", "object"}:  # unittest.mock.patch("a.b._c"), patch.object(x, "_c")
        return next((part for s in strings for part in s.split(".") if private(part)), None)
    return None


def private_accesses(path: Path, root: Path = ROOT) -> list[str]:
    """Where a file reaches a private name of another module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    own = defined_here(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found += [f"from {'.' * node.level}{node.module or ''} import {alias.name}"
                      for alias in node.names if private(alias.name)]
        elif isinstance(node, ast.Import):
            found += [f"import {alias.name}" for alias in node.names if any(map(private, alias.name.split(".")))]
        elif isinstance(node, ast.Attribute) and private(node.attr):
            if node.attr in own or allowed_here(node.attr, path, root):
                continue
            found.append(f"{ast.unparse(node)}")
        elif isinstance(node, ast.Call):
            name = private_string_target(node)
            if name and name not in own and not allowed_here(name, path, root):
                found.append(ast.unparse(node))
        else:
            continue
    return [f"{path.relative_to(root)}:{line}" for line in found]


def checked_files() -> list[Path]:
    files = []
    for entry in CHECKED:
        where = ROOT / entry
        files += [where] if where.is_file() else sorted(where.glob("**/*.py"))
    return files


def test_no_module_reaches_a_private_name_of_another() -> None:
    broken = [access for path in checked_files() for access in private_accesses(path)]
    assert not broken, "\n".join(broken)


def test_the_private_access_check_catches_what_it_is_for(tmp_path: Path) -> None:
    """The check itself, on small files: what it must catch and what it must allow."""
    cases = {
        "from convvis_core.cam.base import CamMethod, _float32\n": ["from convvis_core.cam.base import _float32"],
        "from .base import _float32\n": ["from .base import _float32"],
        "def f(renderer):\n    return renderer._batches.get(3)\n": ["renderer._batches"],
        "from convvis_core import topk\ntopk._scan(1)\n": ["topk._scan"],
        "import convvis_core.featureviz.render as r\nr._renderer()\n": ["r._renderer"],
        "x = LoadedModel(m, i)._viewed(o)\n": ["LoadedModel(m, i)._viewed"],
        "def t(monkeypatch, topk):\n    monkeypatch.setattr(topk, '_reduce', None)\n": [
            "monkeypatch.setattr(topk, '_reduce', None)"],
        "from unittest.mock import patch\npatch('convvis_core.topk._reduce')\n": ["patch('convvis_core.topk._reduce')"],
        "def f(o):\n    return getattr(o, '_scale')\n": ["getattr(o, '_scale')"],
        # allowed: its own names, self/cls, dunders, protocols, the listed third-party internals
        "class A:\n    def __init__(self):\n        self._n = 1\n    def same(self, other):\n"
        "        return self._n == other._n and type(self).__name__\n": [],
        "_CACHE = {}\ndef f():\n    return _CACHE\n": [],
        "def f(t, p):\n    return t._keras_history[0], p._replace(a=1), p._repr_html_()\n": ["t._keras_history"],
    }
    adapter = tmp_path / "convvis_core" / "keras_internals.py"  # the one file that may read Keras's graph
    adapter.parent.mkdir()
    adapter.write_text("def producing_layer(tensor):\n    return tensor._keras_history[0]\n")
    assert private_accesses(adapter, tmp_path) == []
    patched = tmp_path / "patched.py"
    patched.write_text("from convvis_core import topk\ndef t(monkeypatch):\n"
                       "    monkeypatch.setattr(topk.REDUCERS, 'get', None)\n"
                       "    monkeypatch.setattr('tempfile.tempdir', '/x')\n")
    assert project_patches(patched, tmp_path) == ["patched.py:monkeypatch.setattr(topk.REDUCERS, 'get', None)"]
    for number, (source, expected) in enumerate(cases.items()):
        path = tmp_path / f"case{number}.py"
        path.write_text(source)
        assert [access.split(":", 1)[1] for access in private_accesses(path, tmp_path)] == expected, source


PROJECT = ("convvis_core", "convvis_ui", "pages", "convvis_testing", "app_session")

# Tests that still replace a project function (by file, the name replaced) and why; add none: count the
# work with a public counter (convvis_core/counters.py) or pass what the test needs in.
PATCHED_ON_PURPOSE: dict[tuple[str, str], str] = {}


def project_patches(path: Path, where: Path = ROOT) -> list[str]:
    """``monkeypatch.setattr(m, "f", ...)`` (or ``patch.object``) where ``m`` is a name imported from
    the project: a test that swaps project code for its own instead of observing it."""
    tree = ast.parse(path.read_text(), filename=str(path))
    project_names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] in PROJECT:
            project_names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            project_names.update((alias.asname or alias.name).split(".")[0] for alias in node.names
                                 if alias.name.split(".")[0] in PROJECT)
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"setattr", "object"} and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)):
            root = node.args[0]
            while isinstance(root, ast.Attribute):
                root = root.value
            name = str(node.args[1].value)
            if (isinstance(root, ast.Name) and root.id in project_names
                    and (str(path.relative_to(where)), name) not in PATCHED_ON_PURPOSE):
                found.append(f"{path.relative_to(where)}:{ast.unparse(node)}")
    return found


def test_tests_observe_project_code_instead_of_replacing_it() -> None:
    files = [path for folder in ("tests", "bench", "scripts", "convvis_testing")
             for path in sorted((ROOT / folder).glob("**/*.py"))]
    broken = [patch for path in files for patch in project_patches(path)]
    assert not broken, "\n".join(broken)
