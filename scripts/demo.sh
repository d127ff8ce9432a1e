#!/usr/bin/env bash
# The main job on the embedded defaults, run by `make demo` inside .venv:
# validate, lock, train a tiny recipe on the CPU, sign its manifest, verify it,
# then plan: unchanged, to create, and a retrain with its reason after an edit.
# It works in the repository itself; the manifests it writes stay for you to look at.
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

# Scratch files live in .ftctl/ (git-ignored), so the repository stays clean.
demo=.ftctl/demo
rm -rf "$demo" && mkdir -p "$demo"

echo
echo "A recipe with two mistakes, to show what validate reports (exit 1 expected):"
sed -e 's/^lora_alpha:/lora_alhpa:/' -e 's/^learning_rate: .*/learning_rate: -1/' \
    recipes/tiny-alpaca.yaml > "$demo/typo.yaml"
if ftctl validate "$demo/typo.yaml"; then echo "expected validate to fail" >&2; exit 1; fi

# Train for real on the CPU (seconds), like `axolotl train`.
step ftctl train tiny-alpaca --output "$demo/run"

# A demo signing key, made once: the private key outside the repository, the
# public key in keys/ (git-ignored: it is only this machine's demo key).
export XDG_CONFIG_HOME="${XDG_CONFIG_HOME:-$HOME/.config}"
key="$XDG_CONFIG_HOME/ftctl/keys/ftctl-demo.key"
if [[ ! -f "$key" || ! -f keys/ftctl-demo.pub ]]; then
  rm -f "$key" keys/ftctl-demo.pub
  step ftctl keygen ftctl-demo
fi
export FTCTL_SIGNING_KEY="$key"
manifest=$(ftctl attest "$demo/run" --recipe tiny-alpaca)
printf '\n$ ftctl attest %s --recipe tiny-alpaca\n%s\n' "$demo/run" "$manifest"
step ftctl verify "$manifest" --artifacts "$demo/run/adapter"
step ftctl log tiny-alpaca

# tiny-alpaca is recorded, tiny-chat is not.
step ftctl plan

# Edit the trained recipe: the plan says it must retrain, and why. Then undo.
cp recipes/tiny-alpaca.yaml "$demo/recipe.bak"
cp lockfiles/tiny-alpaca.lock "$demo/lock.bak"
restore() { cp "$demo/recipe.bak" recipes/tiny-alpaca.yaml; cp "$demo/lock.bak" lockfiles/tiny-alpaca.lock; }
trap restore EXIT
sed -i 's/^lora_r: 8$/lora_r: 16/' recipes/tiny-alpaca.yaml
printf '\n$ sed -i "s/lora_r: 8/lora_r: 16/" recipes/tiny-alpaca.yaml\n'
step ftctl lock tiny-alpaca
step ftctl plan
restore
trap - EXIT
step ftctl lock --check
echo
echo "demo finished: trained, signed, verified and planned; the recipe edit is undone."
