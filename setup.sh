#!/usr/bin/env bash
# Set-up on a fresh Debian machine: Prometheus and promtool (the ops tests use
# the real ones), Chromium and ChromeDriver (the lead board's browser test),
# stunnel (TLS in front of the embedded broker, for the TLS test) and a
# virtualenv in .venv with the hub and its test tools.
set -euo pipefail
cd "$(dirname "$0")"
missing=""
command -v promtool >/dev/null && command -v prometheus >/dev/null || missing="$missing prometheus"
command -v chromium >/dev/null || missing="$missing chromium"
command -v chromedriver >/dev/null || missing="$missing chromium-driver"
command -v stunnel4 >/dev/null || missing="$missing stunnel4"
if [ -n "$missing" ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
fi
python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]'
