#!/usr/bin/env bash
# Install what tests/test_report.py needs beyond the venv: Debian's Chromium (headless
# rendering of build/report/index.html) and a CJK font (Chinese in the charts and in
# the browser). Installs with apt-get only when something is missing and we are root;
# otherwise says what to install and exits 0, so the test then skips with its reason.
set -euo pipefail

BROWSER_PKG=chromium
FONT_PKG=fonts-wqy-zenhei  # 7.5 MB; fonts-noto-cjk works as well (56 MB)

missing=()
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    missing+=("$BROWSER_PKG")
fi
# Any installed font with Chinese glyphs will do, not only ours.
if ! { command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh family 2>/dev/null)" ]; }; then
    missing+=("$FONT_PKG")
fi

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-browser: chromium and a CJK font are present"
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: missing ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}"
    echo "install-browser: until then tests/test_report.py skips its browser check"
    exit 0
fi
echo "install-browser: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
command -v chromium >/dev/null 2>&1 && chromium --version || true
