#!/usr/bin/env bash
# Make a fresh Debian machine (only Python 3.11 and make) ready: system packages, then
# a virtualenv with aegis-vault installed in editable mode.
#   scripts/bootstrap.sh app    -> what running the app needs (bubblewrap: session exec's sandbox)
#   scripts/bootstrap.sh test   -> plus a real Secret Service (gnome-keyring, D-Bus) and tmux
#   scripts/bootstrap.sh bench  -> plus hyperfine, pass and gnupg for comparisons
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-app}
python=${PYTHON:-python3}

need=()
"$python" -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v bwrap >/dev/null || need+=(bubblewrap)
if [ "$profile" != app ]; then
  command -v gnome-keyring-daemon >/dev/null || need+=(gnome-keyring)
  command -v dbus-daemon >/dev/null || need+=(dbus)
  command -v tmux >/dev/null || need+=(tmux)
fi
if [ "$profile" = bench ]; then
  command -v hyperfine >/dev/null || need+=(hyperfine)
  command -v pass >/dev/null || need+=(pass)
  command -v gpg >/dev/null || need+=(gnupg)
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "bootstrap: installing ${need[*]} with apt-get" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
extras=""
[ "$profile" = app ] || extras="[test]"
# pip's exit status is kept; only its noise about unused local index folders is hidden.
quiet_pip() { .venv/bin/python -m pip "$@" 2> >(grep -v "^WARNING: Location" >&2); }
quiet_pip install -q --upgrade pip
quiet_pip install -q -e ".$extras"
.venv/bin/python -c 'import aegis_tui, cryptography, keyring' 
# This machine sets PYTHONDONTWRITEBYTECODE=1; compile once so the CLI starts fast.
.venv/bin/python -m compileall -q aegis_tui
