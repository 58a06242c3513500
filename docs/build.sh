#!/usr/bin/env bash
# Build the HTML docs offline with warnings as errors (what CI checks).
#   docs/build.sh            incremental build into docs/_build/html
#   docs/build.sh --clean    start from scratch (re-runs the examples)
#   docs/build.sh --no-examples   quick draft of prose and API: examples not
#                                 run (a warning says so; -W is dropped)
# Needs the docs extra: pip install -e ".[docs]"
set -euo pipefail
cd "$(dirname "$0")/.."
strict=(-W --keep-going)
case "${1:-}" in
    --clean) rm -rf docs/_build docs/generated docs/auto_examples ;;
    --no-examples) export SKMIXED_DOCS_SKIP_EXAMPLES=1; strict=() ;;
esac
exec python -m sphinx "${strict[@]}" -b html docs docs/_build/html
