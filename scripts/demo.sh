#!/usr/bin/env bash
# The main job on the embedded defaults, run by `make demo` inside .venv.
# Later capabilities (lock, plan, apply, verify) extend it step by step.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n$ %s\n' "$*"; "$@"; }

step ftctl --version
# The tiny datasets are tracked by DVC; their remote lives inside the repository.
step dvc pull --quiet
step ftctl validate
step ftctl validate examples/
# Pin every input: the tiny model by content, the datasets as DVC recorded them.
step ftctl lock
step ftctl lock --check
# Nothing has been trained and recorded yet, so the plan creates both.
step ftctl plan

# Scratch files live in .ftctl/ (git-ignored), so the repository stays clean.
demo=.ftctl/demo
rm -rf "$demo" && mkdir -p "$demo"
echo
echo "A recipe with two mistakes, to show what validate reports (exit 1 expected):"
sed -e 's/^lora_alpha:/lora_alhpa:/' -e 's/^learning_rate: .*/learning_rate: -1/' \
    recipes/tiny-alpaca.yaml > "$demo/typo.yaml"
if ftctl validate "$demo/typo.yaml"; then echo "expected validate to fail" >&2; exit 1; fi

step ftctl init "$demo/new-workspace"
step ftctl -C "$demo/new-workspace" validate
echo
echo "demo finished: every recipe and example is valid, every lock up to date, the plan made."
