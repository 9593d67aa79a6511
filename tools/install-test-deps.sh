#!/usr/bin/env bash
# Debian packages the test suite needs. Installed when running as root (CI, containers);
# otherwise we say what is missing and let pytest report the tests that need it.
set -euo pipefail
packages=(mosquitto chromium prometheus apache2)   # mosquitto: the MQTT tests' broker; chromium: the status page test; prometheus: promtool; apache2: the reverse proxy (digest auth) of the access tests
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages for the tests: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "warning: not root; install these Debian packages for the full suite: sudo apt-get install ${missing[*]}" >&2
fi
