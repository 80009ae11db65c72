#!/usr/bin/env bash
# The Python interpreter of the test suite, chosen when a test runs, never cached at configure time:
# EIGHT_TEST_PYTHON if set, else the project's .venv (made by scripts/deps.sh --test), else the
# system python3. So README command 1 (which configures build/ before .venv exists) followed by
# README command 2 uses the .venv, and so does a run after the .venv is deleted and made again.
#
#   tools/test_python.sh [--require MODULE,MODULE,...] ARGS...
#
# With --require, each module must be importable (looked up, not imported); otherwise it exits 3
# with a message naming the interpreter and the missing modules, before running anything.
# --require-test-refs means every module of tools/requirements-test.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

if [[ -n "${EIGHT_TEST_PYTHON:-}" ]]; then
  py=$EIGHT_TEST_PYTHON
elif [[ -x "$root/.venv/bin/python3" ]]; then
  py=$root/.venv/bin/python3
else
  py=$(command -v python3 || true)
  if [[ -z "$py" ]]; then
    echo "eight tests: no Python interpreter: no $root/.venv and no python3 on PATH" \
      "(run scripts/deps.sh --test)" >&2
    exit 3
  fi
fi

require=""
case "${1:-}" in
  --require)
    require=$2
    shift 2
    ;;
  --require-test-refs)
    # Import names of the packages in requirements-test.txt (the distribution name is not always
    # the module name: Pillow is PIL).
    require=$(sed -e 's/#.*//' -e 's/[<>=!~ ].*//' "$root/tools/requirements-test.txt" |
      sed -e '/^$/d' -e 's/^Pillow$/PIL/' -e 's/^pillow$/PIL/' | paste -sd, -)
    shift
    ;;
esac

if [[ -n "$require" ]]; then
  missing=$("$py" - "$require" <<'EOF'
import importlib.util
import sys

print(" ".join(m for m in sys.argv[1].split(",") if m and importlib.util.find_spec(m) is None))
EOF
  )
  if [[ -n "$missing" ]]; then
    echo "eight tests: the Python interpreter $py lacks the test references: $missing." \
      "Run scripts/deps.sh --test (it installs tools/requirements-test.txt into $root/.venv)," \
      "or set EIGHT_TEST_PYTHON to an interpreter that has them." >&2
    exit 3
  fi
fi

exec "$py" "$@"
