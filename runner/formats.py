"""The versions of what runner stores: its tables, its config hashes and its trials' records.

Format N is what the code of tests/fixtures/vN stored, and its fixture holds a database of it; the highest is
what this runner stores. A branch that keeps an older trial's config hash, or reads an older row, names the
format it keeps (`V0` ... `V4`), so that the next reader knows which fixture tests it. runner.migrations brings
a database's tables to FORMAT.
"""
from __future__ import annotations

from typing import NamedTuple

__all__ = ["Format", "FORMATS", "FORMAT", "V0", "V1", "V2", "V3", "V4", "V5"]


class Format(NamedTuple):
    """One version of what runner stores."""

    commit: str  # the code that stored it; "" for this runner's
    fixture: str  # the fixture that holds a database of it; "" for none
    added: str  # what it added to the format before


V0, V1, V2, V3, V4, V5 = range(6)
FORMATS = {
    V0: Format("f02d618", "tests/fixtures/v0", "runner_epochs and runner_claims; a preset in the config as its "
                                                "arch (and an MLP's hidden) alone"),
    V1: Format("a1cb093", "tests/fixtures/v1", "runner_epochs.val_loss and val_acc; layer lists, input transforms "
                                                "and user modules in the config; a validation split and user data "
                                                "there where set; search studies"),
    V2: Format("5c4409c", "tests/fixtures/v2", "runner_predictions; runner_epochs.ended; a user's module's "
                                                "input in the config where it is set"),
    V3: Format("43d90da", "tests/fixtures/v3", "no table; ema in the config where it is set; a draw over "
                                                "[search].max_params ends PRUNED (it ended FAIL); the stop "
                                                "reason 'dropped'"),
    V4: Format("db93d79", "tests/fixtures/v4", "the format recorded in runner_alembic_version; ema_warmup in the "
                                                "config of EMA trials"),
    V5: Format("", "", "no table; distill_weight, distill_temperature and the teacher's SHA-256 in the config of "
                       "distilled trials, their teacher in their record"),
}
FORMAT = max(FORMATS)  # what this runner stores
