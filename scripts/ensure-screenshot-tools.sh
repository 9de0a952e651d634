#!/usr/bin/env bash
# Make sure SVG screenshots can be turned into PNG with the right font:
# rsvg-convert (librsvg2-bin) and Fira Code (fonts-firacode), which Textual's SVGs name.
# Installs them with apt-get when missing and allowed (root); otherwise prints a hint.
set -euo pipefail

missing=()
command -v rsvg-convert >/dev/null 2>&1 || missing+=(librsvg2-bin)
if ! fc-list 2>/dev/null | grep -qi "fira code"; then
    missing+=(fonts-firacode)
fi
command -v fc-list >/dev/null 2>&1 || missing+=(fontconfig)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "screenshots: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
        apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null
    }
    fc-cache -f >/dev/null 2>&1 || true
else
    echo "screenshots: missing ${missing[*]}; install them (e.g. sudo apt-get install" \
         "${missing[*]}) for PNG files; SVG files are written anyway" >&2
fi
