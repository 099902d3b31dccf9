"""The report as data: frozen dataclasses for every number it shows, and the names of its files.

A configuration (Config, its Curves), a trial left out (Excluded) and an effect (Effect) are what the stored trials say
(runner.results), below the report; they are named here too as parts of a Report."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runner.errors import ReportError
from runner.results.configs import CURVES, Config, Curve, Excluded, config_key
from runner.results.stats import Effect

__all__ = ["ReportError", "Curve", "Config", "Effect", "Fraction", "Known", "Excluded", "Figure", "Report",
           "REPORT_FILE",
           "SUMMARY_FILE", "CURVES", "config_key", "TopConfig",
           "Candidate", "Selection", "SearchSummary", "Fit", "Choice", "ClassView", "Mistake", "Gallery", "Mistakes",
           "AtChance"]

REPORT_FILE = "report.md"
SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class Fraction:
    """A fractional grid ([grid].design): what it runs, and what its effects cannot be told apart from."""

    lines: tuple[str, ...]  # Spec.design_lines(): what it runs, then each aliased set once
    resolution: int | None  # None: no fraction reached the resolution asked, so every setting ran
    left_out: tuple[str, ...]  # two-way interactions aliased with a main effect: not estimated


@dataclass(frozen=True)
class Reference:
    """A published figure for a dataset and an architecture, with where it comes from."""

    accuracy: float  # % test accuracy
    source: str  # who reported it, where
    model: str  # what they trained, in a few words
    note: str = ""  # what keeps the comparison from being exact


# (dataset, arch) -> the published figure; nothing for user data or datasets without one.
REFERENCES = {
    ("mnist", "lenet5"): Reference(
        99.05, "LeCun et al. 1998", "LeNet-5 (0.95% error, no distortions)",
        "The 1998 network differs from this one in its details (scaled tanh units, trainable "
        "subsampling, sparse C3 connections, an RBF output layer), so the comparison is a sanity "
        "check, not a replication."),
    ("fashion_mnist", "lenet5"): Reference(
        91.6, "the Fashion-MNIST benchmark table (the dataset's README, as Debian's dataset-fashion-mnist "
        "ships it), a submission from TensorFlow's tutorial", "\"2 Conv+pooling\", no preprocessing",
        "The table's authors say they have not tested the submitted figures; the network is not LeNet-5 "
        "(two convolutions and pooling, trained as TensorFlow's tutorial does), so this places the result, "
        "it does not replicate one."),
}


@dataclass(frozen=True)
class Known:
    """LeNet-5 with every regularizer off against a published figure for the same dataset."""

    label: str
    seeds: int
    mean: float
    std: float | None
    lo: float  # the seed spread: min and max of the final accuracies
    hi: float
    reference: float
    full_data: bool  # trained and tested on all of the official splits, as the reference was
    source: str = "LeCun et al. 1998"
    reference_model: str = "LeNet-5"
    note: str = ""
    dataset: str = "MNIST"
    stands_for: str = ""  # why a model that is not the preset stands for LeNet-5 ("" for the preset itself)


@dataclass(frozen=True)
class AtChance:
    """A configuration whose final accuracy is at or near chance, and what the stored trials say of why."""

    key: str  # the configuration's
    label: str
    accuracy: tuple[float, ...]  # % final held-out accuracy per seed
    chance: float  # % a uniform guess gets: 100 / classes
    classes: int
    causes: tuple[str, ...]  # the likely causes the runner knows of (softmax, NaN, a diverged lr); () : none known


@dataclass(frozen=True)
class OutputNote:
    """A model whose stored layer table ends in softmax or log_softmax: what it returns, and how it ran."""

    model: str
    kind: str  # runner.models.user's PROBABILITIES or LOG_PROBABILITIES
    layer: str  # the row that makes them, as its layer table names it ("softmax()", "out")
    classes: int
    best: str  # the label of its best configuration
    accuracy: float | None  # that configuration's mean % final held-out accuracy
    seeds: int = 0  # over how many seeds


@dataclass(frozen=True)
class Figure:
    """One PNG: learning curves of configurations (by key), or the effects plot."""

    file: str
    title: str
    kind: str  # curves | effects
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Fit:
    """How a configuration fits: its final train accuracy as trained against held-out, and where its held-out loss
    bottoms out (means over seeds)."""
    label: str
    train_acc: float  # % on the training batches as seen in the last epoch (augmentation and dropout on)
    held_acc: float  # % on the held-out split at the last epoch
    gap: float  # train_acc - held_acc, points
    best_epoch: int  # the epoch of the lowest mean held-out loss
    last_epoch: int
    rise: float  # the final held-out loss over its lowest, as a fraction (0.25: 25% above)
    verdict: str  # overfits | underfits | neither


@dataclass(frozen=True)
class Choice:
    """What an exploration across budgets chooses for its confirmation, by the rule it states."""
    rule: tuple[str, ...]  # the rule, one sentence per part
    budgets: tuple[tuple[str, float | None, float | None, int], ...]  # (budget, baseline, regularized mean, settings)
    budget: dict[str, Any]  # the across values the regularized settings do best at
    tuned: dict[str, Any]  # the baseline's own best budget
    models: tuple[tuple[str, dict[str, Any], float], ...]  # each other model: its best budget and value there
    settings: tuple[tuple[str, float, str], ...]  # each compared setting: its best value over budgets, and where
    kept: tuple[tuple[str, Any, float], ...]  # (factor, value, delta at the chosen budget) of each one kept
    stack: tuple[tuple[str, Any], ...]  # the (axis, value) of those that improved on the baseline there


@dataclass(frozen=True)
class Report:
    study: str
    description: str
    spec_path: str
    metric: str  # test_acc | test_loss
    direction: str  # maximize | minimize
    axes: tuple[str, ...]  # the axes whose value differs between configurations
    data: list[tuple[str, str]]  # (item, value) rows
    train: list[tuple[str, str]]
    provenance: list[tuple[str, str]]
    seeds: tuple[int, ...]
    param_tables: list[Any]  # runner.models.counts.ParamTable, one per model and variant
    configs: list[Config]  # sorted by the study's metric, best first
    known: Known | None
    effects: list[Effect]
    interactions: list[Effect]
    versus_best: list[Effect]  # every other configuration minus the best, paired by seed
    excluded: list[Excluded]
    figures: list[Figure]
    search: SearchSummary | None = None  # the search behind a tuned spec, else None
    mistakes: Mistakes | None = None  # where the models are wrong; None without predictions
    notes: tuple[str, ...] = ()  # what the report could not check (a user's file gone), one line each
    fraction: Fraction | None = None  # a fractional grid: what it runs and aliases; None for the full grid
    rounds: Any = None  # seeds in rounds: runner.results.looks.Plan, the looks the stored trials allow; None: a list of seeds
    raw: tuple[str, str] = ("", "")  # trials.csv and epochs.csv: the stored values every figure comes from
    against_baseline: bool = False  # the effects are comparisons with a baseline (one-at-a-time), not main effects
    held_out: str = "test"  # the split the trials were scored on: test, or val for a study whose test set is locked
    plan: Any = None  # runner.plan.Status: confirmatory or exploratory, and why
    versus_tuned: list[Effect] = field(default_factory=list)  # compared settings minus the tuned baseline
    teacher: dict[str, Any] | None = None  # a distilled study's teacher, as its trials' records name it
    versus_untaught: list[Effect] = field(default_factory=list)  # each taught configuration minus the same untaught
    fits: list[Fit] = field(default_factory=list)  # over- and underfitting, one per configuration
    choice: Choice | None = None  # an exploration across budgets: what it chooses for its confirmation
    at_chance: list[AtChance] = field(default_factory=list)  # configurations at or near chance, best first
    outputs: list[OutputNote] = field(default_factory=list)  # models that return (log-)probabilities, not logits

    def config(self, key: str) -> Config:
        """The configuration with this key."""
        return next(c for c in self.configs if c.key == key)


# ---------------------------------------------------------------- the search behind a tuned spec


@dataclass(frozen=True)
class TopConfig:
    label: str
    seeds: int
    val: tuple[float, ...]  # final validation accuracy per seed (confirmation trials)
    test: tuple[float, ...]  # final test accuracy per seed
    param_count: int


@dataclass(frozen=True)
class Candidate:
    """One configuration of the selection stage, as the report shows it."""

    label: str
    param_count: int | None
    search: float | None  # the search trial's final validation metric (one seed)
    val: tuple[float, ...]  # the selection's final validation metric per seed
    test: tuple[float, ...]  # information only: its selection trials' weights on test, after the choice
    winner: bool
    reused: tuple[tuple[int, str], ...] = ()  # (seed, "<name>-search trial N"): search trials that stand for its


@dataclass(frozen=True)
class Selection:
    """Selection over seeds on validation, then the winner refit and tested."""

    study: str
    protocol: str  # one sentence
    candidates: tuple[Candidate, ...]  # in the search's order
    refit: bool
    train_images: tuple[int, int]  # (the search's training split, the refit's training images)


@dataclass(frozen=True)
class SearchSummary:
    study: str
    metric: str  # val_acc | val_loss
    direction: str
    budget: int
    counts: dict[str, int]  # complete, pruned, fail, running
    history: tuple[tuple[int, float, float], ...]  # (trial number, value, best so far), complete trials
    curves: tuple[tuple[int, str, tuple[float, ...]], ...]  # (number, state, per-epoch metric)
    importances: dict[str, float]
    importance_note: str
    top: tuple[TopConfig, ...]
    sampler: str
    pruner: str
    raw: tuple[str, str] = ("", "")  # search_trials.csv and search_epochs.csv: what its figures come from
    selection: Selection | None = None  # None: format 2's search (fixture v2), before selection over seeds


# ---------------------------------------------------------------- where the models are wrong


@dataclass(frozen=True)
class ClassView:
    """One configuration's predictions, class by class, summed over its seeds."""

    label: str
    role: str  # "best", "LeNet-5, every regularizer off", "MLP, every regularizer off"
    seeds: int
    confusion: np.ndarray  # (K, K) counts: row = true class, column = predicted, summed over seeds
    per_class: np.ndarray  # (K,) % accuracy of each class, mean over seeds


@dataclass(frozen=True)
class Mistake:
    index: int  # the image's position in the test split
    true: int
    predicted: int
    confidence: float  # the probability the model gave its (wrong) class
    baseline_wrong: bool | None  # whether the baseline (same seed) also got it wrong; None without one


@dataclass(frozen=True)
class Gallery:
    label: str  # the best configuration
    seed: int
    wrong: int  # test images it gets wrong
    total: int  # test images
    baseline: str | None  # the configuration it is compared with
    baseline_too: int | None  # of the `wrong`, how many the baseline also gets wrong
    shown: tuple[Mistake, ...]
    images: np.ndarray | None  # (len(shown), H, W) or (len(shown), C, H, W) uint8


@dataclass(frozen=True)
class Mistakes:
    names: tuple[str, ...]  # the classes' names
    views: tuple[ClassView, ...]
    gallery: Gallery | None
    gallery_note: str  # why there is no gallery, if there is none
