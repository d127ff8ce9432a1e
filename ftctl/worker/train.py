"""Train one run, top to bottom: check the machine, set up, load, build the data, train, save.

Each step is a module: preflight (what this machine cannot train), model
(determinism, the base model and tokenizer), data (the training and
evaluation sets), trainer (trl's trainer and the training), outputs (the run
directory of docs/run-dir.md). Each returns what it computed; nothing else
passes between them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ftctl.recipe.derived import derive
from ftctl.recipe.load import load_recipe
from ftctl.runspec import RunSpec
from ftctl.worker import data, model, outputs, trainer
from ftctl.worker.inputs import trained_record, verified_lock
from ftctl.worker.preflight import check_hardware


def run(spec: RunSpec) -> Path:
    """Train the run ``spec`` describes into ``spec.output_dir``; returns that directory."""
    import torch

    started = datetime.now(UTC)
    recipe = derive(load_recipe(Path(spec.recipe_path)).recipe)
    cuda = torch.cuda.is_available()
    check_hardware(recipe, cuda)
    root, out = Path(spec.workspace), Path(spec.output_dir)
    base_dir = Path(spec.base_model_dir) if spec.base_model_dir else None

    model.make_deterministic(recipe)
    lock = verified_lock(spec.lock, root, recipe)
    record = trained_record(recipe, lock)
    base = model.load(recipe, root, lock, base_dir, cuda)
    sets = data.build(recipe, base.tokenizer, root, lock)
    built = trainer.build(
        recipe,
        cuda,
        out,
        root,
        base,
        sets,
        checkpoint_seconds=spec.checkpoint_seconds,
        progress=Path(spec.progress) if spec.progress else None,
    )
    resume = Path(spec.resume_from) if spec.resume_from else None
    trained = trainer.train(built, recipe, sets, resume)
    if trained.main_process:  # one process writes the run directory
        outputs.write_run_dir(spec, recipe, base, trained, started, cuda, record)
    return out
