"""The training worker: the only part of ftctl that imports torch, transformers, peft, trl or datasets.

Run as ``python -m ftctl.worker SPEC.json`` (by ``ftctl train`` and, later,
apply's executors); the rest of the package never imports it.
"""
