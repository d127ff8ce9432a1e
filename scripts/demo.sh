#!/usr/bin/env bash
# The main job on the embedded defaults, run by `make demo` inside .venv:
# validate, lock, plan, apply (train the tiny recipes on the CPU into the file
# registry, sign their manifests), verify, plan again (no changes), edit one
# recipe and plan exactly that retrain with its reason, apply it, undo the edit
# (which restores the earlier artifact without training).
# It works in the repository itself; its locks, manifests and registry stay for
# you to look at (manifests/, registry/ and .ftctl/ are git-ignored here).
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

# The demo starts from no recorded state: the manifests, registry and run
# directories of an earlier demo go (in this repository only the demo makes them).
rm -rf manifests registry .ftctl/runs .ftctl/demo
demo=.ftctl/demo
mkdir -p "$demo"

echo
echo "A recipe with two mistakes, to show what validate reports (exit 1 expected):"
sed -e 's/^lora_alpha:/lora_alhpa:/' -e 's/^learning_rate: .*/learning_rate: -1/' \
    recipes/tiny-alpaca.yaml > "$demo/typo.yaml"
if ftctl validate "$demo/typo.yaml"; then echo "expected validate to fail" >&2; exit 1; fi

# A demo signing key, made once: the private key outside the repository, the
# public key in keys/ (git-ignored: it is only this machine's demo key).
export XDG_CONFIG_HOME="${XDG_CONFIG_HOME:-$HOME/.config}"
key="$XDG_CONFIG_HOME/ftctl/keys/ftctl-demo.key"
if [[ ! -f "$key" || ! -f keys/ftctl-demo.pub ]]; then
  rm -f "$key" keys/ftctl-demo.pub
  step ftctl keygen ftctl-demo
fi
export FTCTL_SIGNING_KEY="$key"

# Nothing is recorded yet: both recipes must train.
step ftctl plan
# Train them for real on the CPU (seconds each), publish into registry/, sign the manifests.
step ftctl apply --auto-approve
manifest=$(ls manifests/tiny-alpaca/*.intoto.json | tail -n 1)
fp=$(ls registry/tiny-alpaca | tail -n 1)
step ftctl verify "$manifest" --artifacts "registry/tiny-alpaca/$fp"
step ftctl log tiny-alpaca
step ftctl plan

# Edit a recipe: the plan says exactly that it must retrain, and why.
cp recipes/tiny-alpaca.yaml "$demo/recipe.bak"
cp lockfiles/tiny-alpaca.lock "$demo/lock.bak"
undo() { cp "$demo/recipe.bak" recipes/tiny-alpaca.yaml; cp "$demo/lock.bak" lockfiles/tiny-alpaca.lock; }
trap undo EXIT
sed -i 's/^lora_r: 8$/lora_r: 16/' recipes/tiny-alpaca.yaml
printf '\n$ sed -i "s/lora_r: 8/lora_r: 16/" recipes/tiny-alpaca.yaml\n'
step ftctl lock tiny-alpaca
step ftctl plan
step ftctl apply --auto-approve

# Undo the edit: the first artifact exists, so apply restores it instead of training.
undo
trap - EXIT
printf '\n$ # the edit undone\n'
step ftctl lock --check
step ftctl plan
step ftctl apply --auto-approve
step ftctl plan --detailed-exitcode
echo
echo "demo finished: planned, trained, published, verified, retrained after an edit and restored"
echo "after undoing it. Try: ftctl plan, ftctl log tiny-alpaca, ftctl show MANIFEST."
