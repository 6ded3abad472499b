#!/usr/bin/env bash
# Installs what staging-ops and its sandbox need on a Debian 12 / Ubuntu 22.04+ machine:
# system packages (only those missing) and the project's .venv. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

packages=(openssh-server nginx git python3-venv openssl iproute2 ca-certificates sudo)
# scripts/test.sh lints every shell script with it.
packages+=(shellcheck)
# The local droplet (devtools/droplet, tests/droplet): debootstrap builds its Debian tree,
# systemd-nspawn boots it, apt-cacher-ng (our own instance, never the packaged service) is
# its apt proxy.
packages+=(debootstrap systemd-container apt-cacher-ng pebble curl)
# PostgreSQL server binaries: keep a preinstalled cluster version, else install Debian's.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || packages+=(postgresql)
# Debian's Chromium for the dashboard's browser tests (Playwright, from .venv, drives it; its
# own browser download is never used). STAGING_WITH_BROWSER=0 skips it on machines that only
# run the demo.
if [ "${STAGING_WITH_BROWSER:-1}" = 1 ]; then packages+=(chromium); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -qq
  # policy-rc.d 101: the packages' own services must not start (we run our own, on loopback).
  as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
  as_root rm -f /usr/sbin/policy-rc.d
  # Nor may apt-cacher-ng's service start at the next boot: each droplet runs its own instance
  # on its bridge address.
  if [[ " ${missing[*]} " == *" apt-cacher-ng "* ]]; then
    as_root systemctl --quiet disable apt-cacher-ng.service 2>/dev/null || true
    as_root update-rc.d apt-cacher-ng disable >/dev/null 2>&1 || true
  fi
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi
pg_bins=(/usr/lib/postgresql/*/bin)
echo "setup: ready (.venv, $(nginx -v 2>&1), ${pg_bins[-1]})"
