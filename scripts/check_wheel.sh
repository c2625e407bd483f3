#!/usr/bin/env bash
# Build the wheel, install it into a fresh venv (no system site-packages, no source tree on
# sys.path) and check that the entry points run and that the shipped resources are found.
#
# Usage: bash scripts/check_wheel.sh [--wheel FILE] [--deps-from VENV] [--keep]
#   --wheel FILE      test this wheel instead of building one
#   --deps-from VENV  do not install the dependencies again (3 GB: minutes of disk I/O to write
#                     and to delete): put VENV's site-packages *behind* the new venv's own via a
#                     .pth line, install the wheel with --no-deps, then check that every declared
#                     requirement is met. A plain path line in a .pth does not process VENV's own
#                     .pth files, so an editable install there stays invisible; the checks below
#                     also assert that core, icsg3d_gui and resources come from the new venv.
#   --keep            keep the scratch folder (venv, wheel) and print its path
# Env: PYTHON (interpreter for the new venv; default python3).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHEEL=""
DEPS_FROM=""
KEEP=0
while (($#)); do
    case "$1" in
        --wheel) WHEEL="$(realpath "$2")"; shift 2 ;;
        --deps-from) DEPS_FROM="$(realpath "$2")"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        *) echo "check_wheel.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

PY="${PYTHON:-python3}"
WORK="$(mktemp -d -t icsg3d-wheel.XXXXXX)"
if ((KEEP)); then echo "scratch: $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1
quiet_pip() {  # run a pip command, dropping the harmless "Location ... is ignored" index warnings
    "$@" 2>&1 | { grep -v "^WARNING: Location '.*' is ignored" || true; }
    return "${PIPESTATUS[0]}"
}
t=$SECONDS

VENV="$WORK/venv"
"$PY" -m venv "$VENV"    # no --system-site-packages: only what the wheel declares
VPY="$VENV/bin/python"

# Files of the tree as it would be committed: tracked + untracked-but-not-ignored.
git -C "$REPO" ls-files -z --cached --others --exclude-standard >"$WORK/files.lst"
if [[ -z "$WHEEL" ]]; then
    # Build from a copy of those files only, so stale build/ or egg-info folders and ignored
    # files of the working tree can neither hide nor add anything.
    mkdir -p "$WORK/src"
    tar -C "$REPO" --null -T "$WORK/files.lst" --ignore-failed-read -cf - 2>/dev/null | tar -C "$WORK/src" -xf -
    "$VPY" -m pip wheel -q --no-deps -w "$WORK/dist" "$WORK/src" >"$WORK/build.log" 2>&1 || {
        tail -40 "$WORK/build.log" >&2; echo "wheel build failed" >&2; exit 1; }
    WHEEL="$(ls "$WORK"/dist/*.whl)"
    echo "built $(basename "$WHEEL") in $((SECONDS - t)) s"
fi

# Every file of core/, icsg3d_gui/ and resources/ that is *.py or matches pyproject's
# package-data globs must be in the wheel.
"$VPY" - "$WHEEL" "$REPO" "$WORK/files.lst" <<'PYEOF'
import fnmatch
import sys
import tomllib
import zipfile
from pathlib import Path

wheel, repo, lst = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
names = set(zipfile.ZipFile(wheel).namelist())
files = [f for f in lst.read_text().split("\0") if f and (repo / f).is_file()]
pkg_data = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]


def selected(path: str) -> bool:
    top, _, rel = path.partition("/")
    if top not in ("core", "icsg3d_gui", "resources") or "__pycache__" in path:
        return False
    if path.endswith(".py"):
        return True
    for glob in pkg_data.get(top, []):
        if glob.startswith("**/") and fnmatch.fnmatch(rel.rsplit("/", 1)[-1], glob[3:]):
            return True
        if fnmatch.fnmatch(rel, glob):
            return True
    return False


missing = [f for f in files if selected(f) and f not in names]
if missing:
    sys.exit(f"{len(missing)} files missing from the wheel: " + ", ".join(missing[:20]))
for must in ("core/cli/__init__.py", "resources/__init__.py", "icsg3d_gui/app.py", "resources/gallery/index.json"):
    assert must in names, f"{must} not in the wheel"
n_cif = sum(n.startswith("resources/gallery/") and n.endswith(".cif") for n in names)
print(f"wheel has {len(names)} files, {n_cif} gallery CIFs; every selected source/resource file is in it")
PYEOF

t=$SECONDS
if [[ -n "$DEPS_FROM" ]]; then
    purelib() { "$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
    DEPS_SP="$(purelib "$DEPS_FROM/bin/python")"
    NEW_SP="$(purelib "$VPY")"
    [[ "$(basename "$(dirname "$DEPS_SP")")" == "$(basename "$(dirname "$NEW_SP")")" ]] || {
        echo "--deps-from $DEPS_FROM: different Python ($DEPS_SP vs $NEW_SP)" >&2; exit 1; }
    echo "$DEPS_SP" >"$NEW_SP/zz_icsg3d_deps_from.pth"
    quiet_pip "$VPY" -m pip install -q --no-compile --no-deps "$WHEEL"
    # Every requirement the wheel declares must be installed in a version it accepts.
    "$VPY" - <<'PYEOF'
import sys
from importlib.metadata import PackageNotFoundError, requires, version

from packaging.requirements import Requirement

bad = []
for line in requires("icsg3d-studio") or []:
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue  # an optional extra
    try:
        have = version(req.name)
    except PackageNotFoundError:
        bad.append(f"{req} (not installed)")
        continue
    if not req.specifier.contains(have, prereleases=True):
        bad.append(f"{req} (have {have})")
if bad:
    sys.exit("unmet requirements of the wheel: " + "; ".join(bad))
print("every declared requirement is met")
PYEOF
    echo "installed wheel (deps from $DEPS_FROM) in $((SECONDS - t)) s"
else
    quiet_pip "$VPY" -m pip install -q --no-compile torch==2.13.0   # CPU build; unpinned pulls CUDA wheels
    quiet_pip "$VPY" -m pip install -q --no-compile "$WHEEL"
    echo "installed wheel + deps in $((SECONDS - t)) s"
fi

# Run from a folder outside the repository so the source tree cannot be imported.
t=$SECONDS
mkdir -p "$WORK/elsewhere"
cd "$WORK/elsewhere"
unset PYTHONPATH
"$VENV/bin/icsg3d" --help >/dev/null
"$VENV/bin/icsg3d-gui" --help >/dev/null
"$VPY" - "$REPO" "$VENV" <<'PYEOF'
import sys
from pathlib import Path

repo, venv = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
import core
import icsg3d_gui
import resources
from core.gallery import list_gallery
from resources import resource_path

for mod in (core, icsg3d_gui, resources):
    where = Path(mod.__file__).resolve()
    assert venv in where.parents, f"{mod.__name__} imported from {where}, not from the wheel"
assert repo not in resource_path().parents, resource_path()
items = list_gallery()
assert len(items) > 30, len(items)
assert all(item.path.is_file() for item in items)
models = resource_path("models")
shipped = sorted(p.relative_to(models).as_posix() for p in models.rglob("*") if p.is_file())
print(f"wheel OK: {len(items)} gallery crystals at {resource_path('gallery')}; "
      f"models/: {len(shipped)} files {shipped[:6]}")
PYEOF
echo "entry points and resources checked in $((SECONDS - t)) s"

# The README's quick start ends in `icsg3d-gui`: start the installed app on its defaults under a
# virtual display and let it save a screenshot (it exits by itself once the view has rendered).
if command -v xvfb-run >/dev/null; then
    t=$SECONDS
    env -u QT_QPA_PLATFORM xvfb-run -a -s "-screen 0 1280x1024x24" \
        "$VENV/bin/icsg3d-gui" --screenshot "$WORK/app.png" --size 1000x700
    size=$(stat -c %s "$WORK/app.png")
    ((size > 20000)) || { echo "icsg3d-gui screenshot is only $size bytes" >&2; exit 1; }
    echo "icsg3d-gui started from the wheel and rendered a ${size}-byte screenshot in $((SECONDS - t)) s"
else
    echo "xvfb-run not installed: app start from the wheel not checked"
fi

# With a shipped model set, the installed wheel must load it and run the whole pipeline.
MODELS="$("$VPY" -c 'from resources import default_models_dir; print(default_models_dir())')"
if [[ -f "$MODELS/vae/meta.json" ]]; then
    t=$SECONDS
    CIF="$("$VPY" -c 'from resources import resource_path; print(resource_path("gallery", "SrTiO3_perovskite.cif"))')"
    "$VENV/bin/icsg3d" reconstruct "$CIF" --out "$WORK/rec"
    rows=$(($(wc -l <"$WORK/rec/summary.csv") - 1))
    [[ $rows -eq 1 ]] || { echo "reconstruct wrote $rows summary rows, expected 1" >&2; exit 1; }
    echo "shipped models ran from the wheel (icsg3d reconstruct) in $((SECONDS - t)) s"
else
    echo "no shipped model set in the wheel ($MODELS/vae/meta.json missing): model check skipped"
fi
