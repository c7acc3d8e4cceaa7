#!/usr/bin/env bash
# Install (with apt) the system programs the test suite runs, when missing. ./test.sh calls this, and so CI.
# One line per command: the command, then the Debian package that provides it. tests/platform/test_readme.py checks that
# every program the suite runs is listed here.
set -euo pipefail

COMMANDS="
pg_ctlcluster   postgresql
pg_isready      postgresql-client
redis-server    redis-server
redis-cli       redis-tools
node            nodejs
espeak-ng       espeak-ng
sox             sox
chromium        chromium
chromedriver    chromium-driver
caddy           caddy
turnserver      coturn
turnutils_uclient coturn
"

need=()
while read -r command package; do
  [ -n "$command" ] || continue
  command -v "$command" >/dev/null 2>&1 && continue
  [[ " ${need[*]-} " == *" $package "* ]] || need+=("$package")
done <<<"$COMMANDS"
[ ${#need[@]} -gt 0 ] || exit 0

echo "Installing system packages the tests need: ${need[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "Run as root, or install them: apt-get install ${need[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq "${need[@]}"
