"""The training worker: the only part of ftctl that imports torch, transformers, peft, trl or datasets.

Run as ``python -m ftctl.worker SPEC.json`` (by ``ftctl train`` and, later,
apply's executors; see ftctl.launch). The rest of the package starts it as a
process and never imports it, except ``ftctl preprocess``, which imports
ftctl.worker.preprocess to tokenize in-process.
"""
