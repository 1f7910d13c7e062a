#!/usr/bin/env bash
# Sets up everything Sigma needs on a fresh Debian machine: system packages (when running as
# root), a virtualenv in .venv and the project with its test dependencies. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(runc busybox-static iproute2 procps mount e2fsprogs etcd-server docker-registry chromium
              containernetworking-plugins nftables
              runsc crun lxc  # RuntimeClass handlers (each probed by the agent at start)
              zstd)  # zstd-compressed image layers

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || echo "setup: apt-get update failed; trying the install with the cached lists"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "setup: not root (or no apt-get): skipping system packages ${APT_PACKAGES[*]};"
  echo "       the agent will run pods with the process runtime only"
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# requirements.lock pins every package to the versions the suite last passed with; the
# extras bring the simulator's and benchmarks' packages and the tests' (kubectl among them).
stamp=.venv/.sigma-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements.lock -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -c requirements.lock -e '.[test,sim,bench]'
  touch "$stamp"
fi
echo "setup: ready (.venv)"
