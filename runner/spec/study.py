"""[study]: the study's name, its seeds (a list, or rounds of seeds added until it is decided), its metric."""
from __future__ import annotations

from dataclasses import dataclass, field

from runner.spec.grammar import METRICS

__all__ = ["Rounds", "StudySpec"]


@dataclass(frozen=True)
class Rounds:
    """[study].seeds = { first, max, until }: seeds 0 to first - 1, then one round of one more seed at a time
    (runner.rounds) until the study is decided or max seeds are reached."""
    first: int
    max: int
    until: str  # "effects": every point, until every main effect is decided; "best": racing

    @property
    def text(self) -> str:
        """As the spec writes it."""
        return f'{{ first = {self.first}, max = {self.max}, until = "{self.until}" }}'


@dataclass(frozen=True)
class StudySpec:
    name: str
    description: str  # shown at the top of the report
    seeds: tuple[int, ...]  # every point runs once per seed (with rounds: the seeds of the round at hand)
    metric: str  # test_acc | test_loss: what reports rank by (final epoch)
    keep: str = "all"  # all | none: whether complete trials keep their final weights
    rounds: Rounds | None = None  # [study].seeds as a table; None: a fixed list
    test: str = "open"  # open | locked: a locked study never loads, computes, stores or shows a test metric
    # racing's rounds: seed -> the settings (Point.setting_key) still in the race when it was added; a seed not
    # here runs for every setting
    race: dict[int, frozenset[str]] = field(default_factory=dict, compare=False, hash=False)

    @property
    def locked(self) -> bool:
        """Whether the test set is locked ([study].test = "locked")."""
        return self.test == "locked"

    @property
    def direction(self) -> str:
        """Optuna's direction for `metric`."""
        return METRICS[self.metric]
