#!/usr/bin/env bash
# Build the HTML docs offline with warnings as errors (what CI checks).
#   docs/build.sh            incremental build into docs/_build/html
#   docs/build.sh --clean    start from scratch (re-runs the examples)
# Needs the docs extra: pip install -e ".[docs]"
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--clean" ]]; then
    rm -rf docs/_build docs/generated docs/auto_examples
fi
exec python -m sphinx -W --keep-going -b html docs docs/_build/html
