"""The grammar of a spec: every section's keys, their types, defaults and allowed ranges.

These registries are the one place each key is defined: the validator, the trainer, the report,
the JSON Schema (`runner schema`) and docs/spec.md's key tables all read them.
"""
from __future__ import annotations

from runner.augment import AUGMENTATIONS
from runner.data.idx import FAMILY
from runner.formats import V3, V4
from runner.keys import Key
from runner.models.layers import ACTIVATIONS
from runner.models.presets import MLP_HIDDEN
from runner.optim import OPTIMIZERS, SCHEDULES

__all__ = ["ARCHS", "METRICS", "AUGMENTS", "KEEP", "REGULARIZERS", "LATER_REGULARIZERS", "TRAIN_KEYS", "EXECUTION_KEYS", "DISTILL_KEYS",
           "DATASETS", "DATA_KEYS",
           "STUDY_KEYS", "MODEL_KEYS", "ARCH_KEYS", "SEARCH_KEYS", "ENQUEUE_TEXT", "SECTIONS", "AXES", "DESIGNS",
           "GRID_KEYS", "RESOLUTION_KEYS", "ROUNDS_KEYS", "UNTIL", "TEST_LOCK", "RUN_KEYS"]


ARCHS = ("lenet5", "mlp")
METRICS = {"test_acc": "maximize", "test_loss": "minimize", "val_acc": "maximize", "val_loss": "minimize"}
AUGMENTS = ("none", *AUGMENTATIONS)  # in the order they were added: a grid study stores them by index
TEST_LOCK = ("open", "locked")  # [study].test
KEEP = ("all", "none")  # [study].keep: which trials' weights are kept

# Regularizers: a [grid] list, a [[runs]] value, or a [models.X] default. Defaults are "off".
REGULARIZERS: dict[str, Key] = {
    "dropout": Key(float, 0.0, "dropout on the output of each hidden fc layer", ge=0, lt=1),
    "batch_norm": Key(bool, False, "batch norm after each conv and hidden fc layer, before the activation"),
    "weight_decay": Key(float, 0.0, "L2 penalty, the optimizer's weight decay", ge=0),
    "augment": Key(str, "none", "affine: rotation up to 10 degrees, shift up to 2 px, scale 0.9-1.1; elastic: "
                   "Simard et al.'s (2003) distortion, a random field of displacements smoothed by a Gaussian of "
                   "4 px and scaled to 34 px; an independent draw per image, training batches only",
                   choices=AUGMENTS),
    "label_smoothing": Key(float, 0.0, "cross-entropy label smoothing", ge=0, lt=1),
    "ema": Key(float, 0.0, "decay of an exponential moving average of the weights, updated after every step: "
                           "validation, test and the kept weights use the average (0 = off)", ge=0, lt=1),
    "ema_warmup": Key(bool, True, "the average's decay warms up, min(ema, (1 + n) / (10 + n)) after n updates (as "
                                  "TensorFlow's num_updates), so that it does not lag the first epochs' weights; "
                                  "false: the decay is ema from the first step (as EMA trials stored before it)"),
}
# Regularizers a format added (runner.formats) -> that format: an axis of a point (an Optuna param, a report
# column, part of the config hash) only where a spec sets one, so that points without it keep the hash of the
# format before (ema: format 2's, fixture v2; ema_warmup: format 3's, fixture v3).
LATER_REGULARIZERS = {"ema": V3, "ema_warmup": V4}

TRAIN_KEYS: dict[str, Key] = {
    "epochs": Key(int, 15, "epochs of training", ge=1),
    "batch_size": Key(int, 128, "training batch size", ge=1),
    "optimizer": Key(str, "sgd", "momentum is beta1 for adam and adamw", choices=tuple(OPTIMIZERS)),
    "lr": Key(float, 0.01, "peak learning rate", gt=0),
    "momentum": Key(float, 0.9, "SGD momentum; beta1 for adam/adamw", ge=0, lt=1),
    "schedule": Key(str, "constant", "learning-rate schedule, stepped per batch", choices=tuple(SCHEDULES)),
    "device": Key(str, "auto", "auto: cuda when available, else cpu", choices=("auto", "cpu", "cuda")),
    "threads": Key(int, 0, "torch threads per process", ge=0, note="(0 = decide from the cores)"),
    "distill_weight": Key(float, 0.0, "the teacher's share of the loss: (1 - w) CE(student, labels) + w T^2 "
                                      "KL(teacher's softmax at T || student's) (Hinton et al. 2015); needs "
                                      "[train].teacher (0 = no teacher)", ge=0, le=1),
    "distill_temperature": Key(float, 4.0, "T, the temperature of both softmaxes in the teacher's term", gt=0),
}
# Distillation's keys, format 5's: in a point's config only where distill_weight > 0, so that every point
# without a teacher keeps format 4's hash.
DISTILL_KEYS = ("distill_weight", "distill_temperature")
# Execution settings: they choose where a trial runs, not what it computes, so they are not axes
# of the config hash.
EXECUTION_KEYS = ("device", "threads")

# The named datasets: (C, H, W) of an image, number of classes, default normalization (None: "auto").
DATASETS = {name: ((1, 28, 28), f.classes, f.mean, f.std) for name, f in FAMILY.items()}

DATA_KEYS: dict[str, Key] = {
    "dataset": Key(str, "mnist", "which dataset; a spec with target reads the user's own instead",
                   choices=tuple(DATASETS)),
    "root": Key(str, "", "mnist: a folder of the course's train.tar/test.tar, their PNG folders or the IDX files; "
                         "the others: a folder of their IDX files, flat or as torchvision keeps them "
                         "(<root>/<ClassName>/raw/); \"\" = the packaged MNIST, Debian's Fashion-MNIST",
                text='a folder path, or "" for the copy on this machine'),
    "target": Key(str, None, "the user's data: a function returning (train_images, train_labels, test_images, "
                             "test_labels); the spec's folder is searched first", text='"module:function"'),
    "args": Key(dict, None, "keyword arguments of target"),
    "train_limit": Key(int, 0, "the first N training images", ge=0, note="(0 = all)"),
    "test_limit": Key(int, 0, "the first N test images", ge=0, note="(0 = all)"),
    "val_fraction": Key(float, 0.0, "a stratified validation split held out of the training images "
                                    "(0 = none)", ge=0, lt=1),
    "val_seed": Key(int, 0, "the seed that draws the validation split", ge=0),
    "mean": Key(float, None, "normalization (x - mean) / std, pixels in [0, 1]; auto: computed from the "
                             "training images used (default: the dataset's own, auto for user data)", auto=True),
    "std": Key(float, None, "normalization std", gt=0, auto=True),
}

STUDY_NAME_MAX = 512 - len("-search")  # Optuna's studies.study_name is a VARCHAR(512)
STUDY_KEYS: dict[str, Key] = {
    "name": Key(str, None, "the Optuna study's name, unique within a storage", nonempty=True, max_len=STUDY_NAME_MAX,
                text=f"a non-empty name of at most {STUDY_NAME_MAX} characters (Optuna stores a study's name in 512, "
                     "and a search's study adds \"-search\"; file names derived from a long name are hashed)"),
    "description": Key(str, "", "shown at the top of the report"),
    "seeds": Key(list, [0], "every point runs once per seed; or { first, max, until }: seeds 0, 1, ... added one "
                            "round at a time until the study is decided", item=int, item_ge=0, nonempty=True,
                 text="a non-empty list of integers >= 0, or a table { first = N, max = M, until = ... }"),
    "metric": Key(str, "test_acc", "what reports rank by (final epoch)", choices=tuple(METRICS)),
    "test": Key(str, "open", "locked: the test images are never loaded and no test metric is computed, stored or "
                             "shown (exploring: [study].metric must be a validation metric); a study stored locked "
                             "stays locked", choices=TEST_LOCK),
    "keep": Key(str, "all", "all: every complete trial's final weights are kept as an Optuna artifact "
                            "(runner export, runner predict); none: only their metrics and predictions",
                choices=KEEP),
}

UNTIL = ("effects", "best")  # [study].seeds.until: what decides that no more seeds are needed
ROUNDS_KEYS: dict[str, Key] = {  # [study].seeds as a table: seeds in rounds (runner.rounds)
    "first": Key(int, 3, "seeds of the first round (0 to first - 1); each later round adds the next seed", ge=2),
    "max": Key(int, None, "the most seeds any point gets: the study's largest cost", ge=3),
    "until": Key(str, "effects", "effects: a round gives every point one more seed while some main effect of the "
                                 "grid is undecided and can still be decided within max; best: racing, one more seed "
                                 "only for the settings not yet shown worse than the best", choices=UNTIL),
}

MODEL_KEYS: dict[str, Key] = {
    "arch": Key(str, None, "a named architecture", choices=ARCHS),
    "hidden": Key(list, list(MLP_HIDDEN), "hidden widths (mlp only)", item=int, item_ge=1, nonempty=True),
    "layers": Key(list, None, "the layers in order, one inline table each", text="a list of layer tables"),
    "act": Key(str, "relu", "default activation of conv and hidden fc layers", choices=tuple(ACTIVATIONS)),
    "input": Key(dict, None, "what is done to each image first: { pad = N } or { resize = N }"),
    "target": Key(str, None, "a user's nn.Module, module:attribute; the spec's folder is searched first",
                  text='"module:attribute", e.g. "mynet:Net"'),
    "args": Key(dict, None, "keyword arguments of target's constructor"),
    "compare": Key(str, None, "the preset this model stands for in the report: LeNet-5 against the published "
                              "figure and on compare.png beside the MLP (default: a preset is itself, and a declared "
                              "model or a module whose layer table matches a preset's stands for it)",
                   choices=ARCHS),
    **REGULARIZERS,
}
ARCH_KEYS = ("arch", "layers", "target")  # a model gives exactly one of them

SEARCH_KEYS: dict[str, Key] = {
    "metric": Key(str, "val_acc", "what the search optimizes, on the validation split; never a test metric",
                  choices=("val_acc", "val_loss")),
    "trials": Key(int, 40, "finished trials (complete or pruned), across every worker and machine", ge=1),
    "timeout": Key(str, "", 'a wall-clock cap: "90m", "2h", "45s" ("" = none)'),
    "sampler": Key(str, "tpe", "Optuna's sampler, seeded: a search is repeatable on one worker",
                   choices=("tpe", "random")),
    "pruner": Key(str, "median", "stops trials early on the per-epoch validation metric",
                  choices=("median", "hyperband", "none")),
    "top": Key(int, 3, "candidates, the search's best by validation, trained again with every seed of [study].seeds "
                         "on the validation split; the best mean is the one tested", ge=1),
    "seed": Key(int, 0, "the sampler's seed", ge=0),
    "max_params": Key(int, 0, "refuse configurations with more parameters (0 = no cap)", ge=0),
    "warmup_epochs": Key(int, 2, "epochs every trial trains before the pruner may stop it (median and patient)",
                         ge=0),
    "patience": Key(int, 0, "median: > 0 wraps it in Optuna's PatientPruner: a trial below the median is stopped "
                            "only once its validation metric has not beaten its best for patience + 1 epochs "
                            "(0 = at once)", ge=0),
    "refit": Key(bool, True, "the confirmation trains on all the training images (train + validation), as "
                             "sklearn's refit=True does; false: the validation split stays held out"),
    "start_from": Key(list, [], "studies in the same storage whose best configurations (of each model) are the "
                                "search's first trials", item=str),
}
# [grid]'s own keys, beside its axis lists. A fractional design picks some of the grid's settings: each axis
# has two values, and the runs are a two-level design's (runner.design.fractional).
DESIGNS = ("full", "half", "one-at-a-time")  # the words; { resolution = N } is the fourth form
GRID_KEYS: dict[str, Key] = {
    "design": Key(str, "full", "which settings of the grid run: full: every combination; half: half of them "
                               "(2^(k-1) of 2^k), each main effect aliased only with the interaction of all the other "
                               "axes; { resolution = N }: the fewest at that resolution. A fraction takes axes of two "
                               "values (an axis of one value is a constant) and one model; [[runs]] beside it add their "
                               "settings. one-at-a-time: the first value of every axis is the baseline, and each other "
                               "value is added to it alone, compared with it (runner.design.one_at_a_time)",
                  choices=DESIGNS, text='"full" | "half" | "one-at-a-time" | { resolution = N }'),
    "across": Key(dict, None, "one-at-a-time only: axes crossed with the design (a budget: lr, epochs, model...), "
                              "each a list; every comparison is taken within one combination of them",
                  text="a table of axis = [values]"),
}
RESOLUTION_KEYS: dict[str, Key] = {  # [grid].design as a table
    "resolution": Key(int, None, "at 3 main effects are aliased with two-way interactions, at 4 only with three-way "
                                 "ones (two-ways with each other), at 5 two-ways are clear of each other too", ge=3),
}
RUN_KEYS: dict[str, Key] = {  # a [[runs]] entry's own keys, beside its axes
    "baseline": Key(str, None, "true: this run is the baseline every other setting is compared with; \"tuned\": the "
                               "baseline at its own best budget, which the settings that improve on the baseline are "
                               "also compared with", text='true or "tuned"'),
    "label": Key(str, None, "the name its comparison with the baseline goes by (default: the axes it changes)",
                 nonempty=True),
}
ENQUEUE_TEXT = "a list of points, e.g. [{ lr = 0.05, batch_norm = true }], each the first trials in order"
SECTIONS = ("study", "data", "train", "models", "grid", "runs", "search")
AXES = ("model", *REGULARIZERS, *(k for k in TRAIN_KEYS if k not in EXECUTION_KEYS))
