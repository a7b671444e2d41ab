"""Hyperparameter search over warmstart's own options, on Optuna: see :mod:`warmstart.tuning.study`."""
