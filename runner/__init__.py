"""runner: declarative ablation grids for PyTorch, stored as Optuna studies."""

__all__ = ["load_model"]


def load_model(path, module_dir=None, sha256=None):  # noqa: ANN001, ANN201 - see runner.weights
    """A model file of `runner export` as an nn.Module in eval mode (runner.weights.load_model); a user's module
    is looked for where `runner grid` found it unless `module_dir` names the folder it moved to."""
    from runner.weights import load_model as load  # torch is imported here, not by `import runner`

    return load(path, module_dir, sha256)
