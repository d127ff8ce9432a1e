#!/usr/bin/env bash
# The main job on the embedded defaults, run by `make demo` inside .venv.
# Later capabilities (lock, plan, apply, verify) extend it step by step.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step ftctl --version
# The tiny datasets are tracked by DVC; their remote lives inside the repository.
step dvc pull --quiet
step ftctl validate
step ftctl validate examples/
echo
echo "A recipe with mistakes, to show what validate reports:"
bad=$(mktemp -d)/typo.yaml
trap 'rm -rf "$(dirname "$bad")"' EXIT
sed -e 's/^lora_alpha:/lora_alhpa:/' -e 's/^learning_rate: .*/learning_rate: -1/' \
    recipes/tiny-alpaca.yaml > "$bad"
if ftctl validate "$bad"; then echo "expected validate to fail" >&2; exit 1; fi
echo
echo "demo finished: every recipe and example is valid."
