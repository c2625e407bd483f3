"""The CI's system-package step on a machine that lacks every package (stub dpkg/apt on PATH).

CI itself runs where the packages may already be installed, so the install path would otherwise
never run before a fresh machine hits it.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / ".ci" / "system_packages.sh"

# apt-cache prints its Candidate line first and then a long version table: long enough that a
# reader which stops at the first match (grep -q) closes the pipe while apt-cache still writes.
APT_CACHE = """#!/usr/bin/env bash
pkg="$1"; [[ "$1" == policy ]] && pkg="$2"
echo "$pkg:"
echo "  Installed: (none)"
if [[ "$pkg" == no-such-package ]]; then echo "  Candidate: (none)"; exit 0; fi
echo "  Candidate: 2:21.1.7-3+deb12u12"
for i in $(seq 1 4000); do echo "     2:21.1.$i-3 500 http://deb.debian.org/debian bookworm/main amd64 Packages"; done
"""
DPKG = '#!/usr/bin/env bash\necho "dpkg-query: package \'$2\' is not installed" >&2\nexit 1\n'
APT_GET = '#!/usr/bin/env bash\necho "$*" >> "$APT_LOG"\n'
SUDO_ = '#!/usr/bin/env bash\n[[ "$1" == -n ]] && shift\nexec "$@"\n'


def _stub_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in {"apt-cache": APT_CACHE, "dpkg": DPKG, "apt-get": APT_GET, "sudo": SUDO_}.items():
        f = bin_dir / name
        f.write_text(text)
        f.chmod(f.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return bin_dir


def _run(tmp_path: Path, script: Path = SCRIPT) -> tuple[subprocess.CompletedProcess, str]:
    log = tmp_path / "apt.log"
    env = {**os.environ, "PATH": f"{_stub_bin(tmp_path)}:{os.environ['PATH']}", "APT_LOG": str(log)}
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    return proc, log.read_text() if log.exists() else ""


def test_installs_every_missing_package(tmp_path: Path) -> None:
    proc, apt_log = _run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "update" in apt_log
    install = [line for line in apt_log.splitlines() if line.startswith("install")]
    assert len(install) == 1
    for pkg in ("xvfb", "xauth", "libgl1-mesa-dri", "libxcb-cursor0"):
        assert f" {pkg}" in install[0]


def test_a_package_without_candidate_is_named(tmp_path: Path) -> None:
    script = tmp_path / "system_packages.sh"
    script.write_text(SCRIPT.read_text().replace("APT_PKGS=(xvfb ", "APT_PKGS=(no-such-package xvfb "))
    proc, apt_log = _run(tmp_path, script)
    assert proc.returncode == 1
    assert "no candidate for: no-such-package" in proc.stderr
    assert "install" not in apt_log.replace("installing", "")


@pytest.mark.parametrize("run_script", [".ci/run"])
def test_ci_run_uses_the_tested_step(run_script: str) -> None:
    # The step tested above is the one CI executes, not a copy of it.
    assert 'bash "$REPO/.ci/system_packages.sh"' in (REPO / run_script).read_text()
