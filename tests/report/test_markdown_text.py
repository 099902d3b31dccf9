"""runner/report/markdown_text.py: the sentences and table cells of effects never contradict their numbers.

Property-based (hypothesis): small random studies (2-4 seeds, a few dozen to a few hundred images, two models,
effects from none to large) are tested as the report tests them (runner.results.stats), and every sentence and
table cell is checked against the effect it describes: a verdict of improves or hurts exactly where the decisive
p is below 0.05, the interval shown is the decisive test's, the model named when there are several, no power
figure where none is defined (no "±0.00"), and never "N seeds would decide it" with N no more than the seeds the
study has."""
from __future__ import annotations

import re

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from runner.report.markdown_text import effect_sentence, power_cells, power_names
from runner.results.stats import ALPHA, Pair, Row, effects_of


@st.composite
def studies(draw) -> list[Row]:
    """Rows of paired per-image contrasts: per model and factor, `seeds` pairs of on/off correctness."""
    seeds, images = draw(st.integers(2, 4)), draw(st.integers(30, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    rows = []
    for model in ("lenet", "mlp"):
        for factor in ("dropout", "batch_norm"):
            base = draw(st.floats(0.5, 0.99))
            shift = draw(st.sampled_from([0.0, 0.0, 0.01, -0.02, 0.1, -0.3]))
            flips = draw(st.sampled_from([0.0, 0.01, 0.1]))  # how much seeds disagree
            truth = rng.random(images) < base
            pairs = []
            for seed in range(seeds):
                off = 100.0 * (truth ^ (rng.random(images) < flips))
                on = 100.0 * ((rng.random(images) < base + shift) if shift else (truth ^ (rng.random(images) < flips)))
                pairs.append(Pair(seed, float(on.mean() - off.mean()), [(on, 1.0), (off, -1.0)]))
            rows.append(Row(model, factor, 0, 1, pairs))
    return rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(studies())
def test_sentences_and_cells_never_contradict_the_numbers(rows):
    effects = effects_of(rows, "maximize")
    for e in effects:
        text = effect_sentence(e, "test_acc", several=True)
        ci, p = e.decisive
        assert text.startswith(f"{e.model}: {e.factor} ")
        decided = p is not None and p < ALPHA
        assert (" improves " in text or " hurts " in text) == decided == (e.verdict in ("improves", "hurts"))
        if ci is not None and e.verdict == "no detectable effect":
            assert f"[{ci[0]:+.2f}, {ci[1]:+.2f}]" in text
        assert "±0.00" not in text
        for n in re.findall(r"; ([\d,]+) seeds would decide it", text):
            assert int(n.replace(",", "")) > e.detectable_seeds
        cells = power_cells(e, effects) if power_names(effects) else []
        assert not cells or "±0.00" not in cells[0]
        if cells and cells[1].replace(",", "").isdigit() and e.verdict not in ("improves", "hurts"):
            assert int(cells[1].replace(",", "")) > e.detectable_seeds


def test_a_contrast_without_spread_prints_no_power_figure():
    same = np.full(50, 100.0)
    rows = [Row("m", "x", 0, 1, [Pair(s, 0.0, [(same, 1.0), (same, -1.0)]) for s in range(3)])]
    [e] = effects_of(rows, "maximize")
    assert "detectable:" not in effect_sentence(e, "test_acc") and "±" not in effect_sentence(e, "test_acc")


def test_comparisons_with_too_few_pairs_are_one_bullet_and_the_rest_keep_theirs():
    from runner.report.contents import Effect
    from runner.report.markdown_text import effect_lines
    few = [Effect("lenet5", f, a, b, 1, 0.1, None, None, None, "too few pairs", within=w)
           for w in ("lr=0.01", "lr=0.05") for f, a, b in (("dropout", 0.0, 0.25), ("ema", 0.0, 0.999))]
    decided = Effect("lenet5", "batch_norm", False, True, 3, -0.5, (-0.7, -0.3), 0.001, 0.002, "hurts")
    lines = effect_lines([few[0], decided, *few[1:]], "test_acc")
    assert lines == [f"- {effect_sentence(decided, 'test_acc')}",
                     "- 4 comparisons, dropout (0.0 → 0.25), ema (0.0 → 0.999), each at 2 budgets: too few paired "
                     "trials (1 each) to tell."]
    assert effect_lines(few[:1], "test_acc") == [f"- {effect_sentence(few[0], 'test_acc')}"]
