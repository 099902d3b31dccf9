"""runner: declarative ablation grids for PyTorch, stored as Optuna studies."""
