"""Evaluation of runs and published versions (``detector-eval``, issue 19)."""
