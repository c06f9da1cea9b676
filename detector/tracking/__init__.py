"""Weights & Biases tracking: ``tracker`` owns the W&B run (``session``), ``settings`` builds its ``wandb.init``
arguments, and ``media`` renders what a finished run shows (facts, plots, a predictions table)."""
