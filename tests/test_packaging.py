"""Packaging rules: core stays headless, the entry points are declared, resources ship in the wheel.

The wheel itself is built and installed by ``scripts/check_wheel.sh`` (run by ``.ci/run``);
these tests check the declarations statically, in milliseconds.
"""

from __future__ import annotations

import ast
import fnmatch
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_CORE = {"PySide6", "pyvista", "pyvistaqt", "matplotlib", "icsg3d_gui"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def imported_roots(source: str, filename: str = "<src>") -> set[str]:
    """Top-level package names imported anywhere in ``source`` (nested and conditional imports too).

    Relative imports (``from . import x``) stay inside the package and are not reported.
    """
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            roots.add(node.args[0].value.split(".")[0])
    return roots


def _is_dynamic_import(func: ast.expr) -> bool:
    """``importlib.import_module(...)``, ``import_module(...)`` or ``__import__(...)``."""
    if isinstance(func, ast.Attribute):
        return func.attr == "import_module"
    return isinstance(func, ast.Name) and func.id in {"import_module", "__import__"}


def core_files() -> list[Path]:
    return sorted((ROOT / "core").rglob("*.py"))


def test_imported_roots_sees_every_import_form():
    src = (
        "import os, PySide6.QtCore as qc\n"
        "from pyvista import Plotter\n"
        "from . import sibling\n"
        "from .models import vae\n"
        "def f():\n"
        "    import matplotlib.pyplot as plt\n"
        "    importlib.import_module('pyvistaqt')\n"
        "try:\n"
        "    from icsg3d_gui.app import main\n"
        "except ImportError:\n"
        "    pass\n"
    )
    assert imported_roots(src) == {"os", "PySide6", "pyvista", "matplotlib", "pyvistaqt", "icsg3d_gui"}


def test_core_has_modules():
    names = {p.relative_to(ROOT / "core").as_posix() for p in core_files()}
    assert {"__init__.py", "errors.py", "gallery.py"} <= names


@pytest.mark.parametrize("path", core_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_core_never_imports_gui_or_plotting(path: Path):
    bad = imported_roots(path.read_text(encoding="utf-8"), str(path)) & FORBIDDEN_IN_CORE
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}; core must stay headless"


def test_entry_points_declared():
    scripts = _pyproject()["project"]["scripts"]
    assert scripts.get("icsg3d") == "core.cli:main"
    assert scripts.get("icsg3d-gui") == "icsg3d_gui.app:main"


@pytest.mark.parametrize("name", ["icsg3d", "icsg3d-gui"])
def test_entry_point_targets_exist(name: str):
    """The module behind each entry point exists and defines the function (checked without importing)."""
    module, _, func = _pyproject()["project"]["scripts"][name].partition(":")
    path = ROOT.joinpath(*module.split(".")).with_suffix(".py")
    if not path.is_file():  # a package: its __init__.py
        path = ROOT.joinpath(*module.split("."), "__init__.py")
    assert path.is_file(), f"{name}: {path.relative_to(ROOT)} missing"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert func in defined, f"{name}: {module} has no top-level {func}()"


def test_packages_found_by_setuptools():
    """Every package folder under core/ and icsg3d_gui/ (and resources/) has an __init__.py."""
    include = _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {"core*", "icsg3d_gui*", "resources*"} <= set(include)
    assert (ROOT / "resources" / "__init__.py").is_file()
    for top in ("core", "icsg3d_gui"):
        for folder in [ROOT / top, *(p for p in (ROOT / top).rglob("*") if p.is_dir())]:
            if folder.name == "__pycache__" or not any(folder.glob("*.py")):
                continue
            assert (folder / "__init__.py").is_file(), f"{folder.relative_to(ROOT)} lacks __init__.py"


def _covered(rel: str, globs: list[str]) -> bool:
    """Whether setuptools package-data ``globs`` (relative to the package) select file ``rel``."""
    for glob in globs:
        if glob.startswith("**/") and fnmatch.fnmatch(rel.rsplit("/", 1)[-1], glob[3:]):
            return True
        if fnmatch.fnmatch(rel, glob):
            return True
    return False


@pytest.mark.parametrize(
    "rel",
    ["gallery/SrTiO3_perovskite.cif", "gallery/index.json", "models/vae/model.safetensors",
     "models/vae/meta.json", "models/unet/meta.json", "models/cgcnn/model.safetensors"],
)
def test_package_data_covers_gallery_and_models(rel: str):
    globs = _pyproject()["tool"]["setuptools"]["package-data"]["resources"]
    assert _covered(rel, globs), f"resources/{rel} would not ship with package-data {globs}"


def test_package_data_covers_every_shipped_resource():
    """Every file actually present under resources/ (except caches) is selected by the globs."""
    globs = _pyproject()["tool"]["setuptools"]["package-data"]["resources"]
    files = [f for f in _resource_files() if not f.endswith(".py")]
    assert any(f.startswith("gallery/") and f.endswith(".cif") for f in files)
    uncovered = [f for f in files if not _covered(f, globs)]
    assert not uncovered, f"not shipped by package-data {globs}: {uncovered[:10]}"


def _resource_files() -> list[str]:
    """Files under resources/ as they would be committed (git's view when available: ignored
    scratch files do not count), relative to resources/."""
    base = ROOT / "resources"
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--cached", "--others",
                              "--exclude-standard", "resources"],
                             capture_output=True, text=True, check=True, timeout=30).stdout.split("\n")
        paths = [ROOT / f for f in out if f]
    except (OSError, subprocess.SubprocessError):
        paths = list(base.rglob("*"))
    return [p.relative_to(base).as_posix() for p in paths if p.is_file() and "__pycache__" not in p.parts]


def test_covered_matches_setuptools_semantics():
    assert _covered("gallery/a.cif", ["**/*.cif"])
    assert _covered("a.cif", ["**/*.cif"])
    assert _covered("models/vae/model.safetensors", ["**/*.safetensors"])
    assert not _covered("models/vae/train_state.pt", ["**/*.safetensors", "**/*.json"])


def test_torch_pin_allows_the_local_cpu_build():
    """CI installs torch==2.13.0 first; the declared range must accept it (or pip would replace it)."""
    deps = _pyproject()["project"]["dependencies"]
    torch_spec = next(d for d in deps if d.replace(" ", "").startswith("torch"))
    from packaging.specifiers import SpecifierSet

    spec = SpecifierSet(torch_spec.replace(" ", "")[len("torch"):])
    assert "2.13.0" in spec, torch_spec
