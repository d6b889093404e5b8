#!/usr/bin/env bash
# Install everything the tests need on a fresh machine, then run the whole suite (extra args go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -r requirements-dev.txt
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
[ -d /usr/share/wordnet ] || missing="$missing wordnet-base"
[ -d /usr/share/games/fortunes ] || missing="$missing fortunes"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"  # class game on Postgres
command -v zbarimg >/dev/null 2>&1 || missing="$missing zbar-tools"  # reads the class game's QR code
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing="$missing nginx"  # the replicas' proxy
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq $missing
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python3 -m pytest "$@"   # exit code 5 (no tests collected) fails this script too
