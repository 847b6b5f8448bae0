#!/usr/bin/env bash
# Make Debian's Chromium available for the browser tests (Playwright drives it; `playwright
# install` cannot download browsers here). Idempotent and quiet: does nothing when `chromium`
# is already on PATH; otherwise installs it with apt-get (needs root, or passwordless sudo).
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
  SUDO=(sudo -n)
else
  echo "chromium is missing and installing it needs root (apt-get install chromium)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { "${SUDO[@]}" apt-get update -qq \
       && "${SUDO[@]}" apt-get install -y -qq chromium; } >"$log" 2>&1; then
  echo "installing chromium failed:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
command -v chromium >/dev/null 2>&1
