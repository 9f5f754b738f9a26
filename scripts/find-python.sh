#!/usr/bin/env bash
# Print a Python >= 3.12: $PYTHON if set, else python3.12/3.13 on PATH, else pyenv's.
set -eu
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; }
if [ -n "${PYTHON:-}" ]; then
  ok "$PYTHON" && { echo "$PYTHON"; exit 0; }
  echo "PYTHON=$PYTHON is not Python 3.12+" >&2; exit 1
fi
for c in python3.12 python3.13 python3.14 python3; do
  p=$(command -v "$c" 2>/dev/null) || continue
  ok "$p" && { echo "$p"; exit 0; }
done
for p in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3; do
  [ -x "$p" ] && ok "$p" && { echo "$p"; exit 0; }
done
echo "no Python 3.12+ found: install one or set PYTHON=/path/to/python3.12" >&2
exit 1
