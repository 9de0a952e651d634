#!/usr/bin/env bash
# Make sure headless Chromium and its WebDriver are there for the browser test of
# `wgops console --web`: Debian's chromium and chromium-driver (/usr/bin/chromedriver).
# Installs them with apt-get when missing and allowed (root); otherwise prints a hint and
# the browser test is skipped. Nothing is downloaded at run time by the tests.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "browser: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
        apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null
    }
else
    echo "browser: missing ${missing[*]}; install them (e.g. sudo apt-get install" \
         "${missing[*]}) for the web console's browser test" >&2
fi
