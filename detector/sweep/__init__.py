"""Hyperparameter sweeps: an Optuna study whose trials are training runs, and Hydra multirun tables.

``run`` checks a sweep and drives one worker, ``space`` reads the search space, ``study`` opens the
shared study, ``trial`` trains one point, ``report`` writes best.yaml, trials.csv and plots, and
``multirun`` summarises a ``detector-train -m`` grid.
"""
