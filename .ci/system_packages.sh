#!/usr/bin/env bash
# Install the Debian packages the GUI tests need (virtual X display, Mesa GL, Qt's xcb plugin
# libraries) where they are missing. Called by .ci/run; tested with stub dpkg/apt-get/apt-cache
# on PATH by tests/test_ci.py, so that a fresh machine's path runs in every CI run, not only on
# machines that lack the packages.
# Usage: bash .ci/system_packages.sh      (as root, or with passwordless sudo)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

SUDO=""
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then SUDO="sudo -n"; fi

APT_PKGS=(xvfb xauth libgl1-mesa-dri libglx-mesa0 libegl1 libxkbcommon-x11-0 libxcb-cursor0
          libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0
          libxcb-render-util0 libxcb-image0 libdbus-1-3 libfontconfig1)

has_candidate() {  # has_candidate PKG: apt knows an installable version of PKG
    # Capture first, then match: piping into `grep -q` under pipefail lets apt-cache die of
    # SIGPIPE once grep has seen its match, and the pipeline then fails (exit 141).
    local policy
    policy="$(apt-cache policy "$1" 2>/dev/null)" || return 1
    [[ "$policy" =~ Candidate:\ [0-9] ]]
}

missing=()
for p in "${APT_PKGS[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
    echo "all ${#APT_PKGS[@]} packages present"
    exit 0
fi
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
no_candidate=()
for p in "${missing[@]}"; do
    has_candidate "$p" || no_candidate+=("$p")
done
if ((${#no_candidate[@]})); then
    echo "apt has no candidate for: ${no_candidate[*]} (check /etc/apt/sources.list)" >&2
    exit 1
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed ${#missing[@]} packages"
