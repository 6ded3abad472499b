# shellcheck shell=bash
# Sourced first by the README's commands. They need root (apt, sshd, systemd-nspawn): root
# runs them as they are, without sudo (a fresh Debian 12 may have none); anyone else goes
# through sudo once, with the settings the scripts read.
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "$(basename "$0"): run this as root (sudo is not installed)" >&2
    exit 2
  fi
  exec sudo --preserve-env=CI,STAGING_REQUIRE_DROPLET,STAGING_WITH_BROWSER,STAGING_TEST_PORT_BASE,PYTEST_ADDOPTS \
    bash "$(realpath "$0")" "$@"
fi
