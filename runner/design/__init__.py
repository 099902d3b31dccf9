"""Ablations that decide: how many seeds a verdict needs, seeds added until it is decided, fractional designs.

How many seeds? Every effect in the report is a mean, over seeds, of a difference measured on the
same test images, and its uncertainty has two sources. One is the seeds: each training run lands a
little differently, and some images flip between right and wrong from one run to the next;
averaging n seeds divides this part by n. The other is the test set: its 10,000 images are a sample
of all the digits there are, and an effect carried by a few dozen particular images would come out
differently on another sample; since every seed is scored on the same images, this part does not
shrink however many seeds are added. Both parts are estimated from the stored per-image predictions
by a two-way analysis of variance over seeds and images: the spread of the per-seed differences
gives the seed part, and the spread of the per-image differences, less the flips already counted
in the seed part, gives the image part. The standard error with n seeds is then
SE(n) = sqrt(seed part / n + image part). An effect is detectable with 80% power at level alpha
(the level Holm's correction tested it at) when it is at least (z_{1-alpha/2} + z_{0.8}) x SE(n),
that is 2.8 standard errors at alpha = 0.05; the seeds needed is the smallest n at which the
observed effect clears that bar. With unlimited seeds SE(n) falls to sqrt(image part), and 2.8
times that is the floor: the smallest effect this test set can resolve at all. An effect below the
floor cannot be decided with this test set; only more test images would help.

    power       the variance split and the figures it gives: split_variance, split_contrast,
                standard_error, z_statistic, minimum_detectable_effect, floor, seeds_needed, holm_levels
    sequential  seeds added until decided: O'Brien-Fleming-type alpha spending (boundaries,
                decide, decide_effects with Holm), futility (can_still_decide), racing (still_in_race)
    fractional  two-level designs with pyDOE3: design, aliases, alias_lines, estimable_interactions,
                estimate_main_effects, estimate_interactions

Every variance is in squared percentage points, every effect in points (100 x a difference in
accuracy); every level is two-sided.
"""
from __future__ import annotations

from runner.design.fractional import (MAX_FACTORS, Design, DesignError, alias_lines, aliases, design,
                                      estimable_interactions, estimate_interactions, estimate_main_effects)
from runner.design.power import (POWER, VarianceSplit, floor, holm_levels, minimum_detectable_effect, seeds_needed,
                                 split_contrast, split_variance, standard_error, z_statistic)
from runner.design.sequential import (ALPHA, Verdict, boundaries, boundaries_at, can_still_decide, decide,
                                      decide_effects, spending, still_in_race)

__all__ = [
    "VarianceSplit", "split_variance", "split_contrast", "standard_error", "z_statistic",
    "minimum_detectable_effect", "floor", "seeds_needed", "holm_levels", "POWER",
    "ALPHA", "Verdict", "spending", "boundaries", "boundaries_at", "decide", "decide_effects", "can_still_decide",
    "still_in_race",
    "DesignError", "Design", "design", "aliases", "alias_lines", "estimable_interactions", "estimate_main_effects",
    "estimate_interactions", "MAX_FACTORS",
]
