"""The report's figures, rendered to PNG bytes by matplotlib: learning curves and main effects; the search's
history and per-epoch curves; the confusion matrices and the gallery of mistakes."""
from __future__ import annotations

from typing import Any

import numpy as np

from runner.plotting import DPI, ink, render, text_inches, wrap
from runner.report.contents import CURVES, Config, Effect, Figure, Gallery, Mistakes, Report, SearchSummary
from runner.report.markdown_text import METRIC_WORDS, change_text, p_text

__all__ = ["DPI", "curves_png", "effects_png", "history_png", "search_curves_png", "confusion_png", "gallery_png",
           "curves_figure", "effects_figure", "history_figure", "search_curves_figure", "confusion_figure",
           "gallery_figure"]

SMALL = 8.33  # points: matplotlib's "small" at the default style's 10-point font, as a number to measure text with
LARGE = 12.0  # points: matplotlib's "large", the size of titles
LABEL_INCHES = 3.3  # an effect's description wraps past this width, so that the plot keeps its own


def curves_png(report: Report, figure: Figure) -> bytes:
    """Four panels (train/test x loss/accuracy), one line and band per configuration. As PNG bytes."""
    return render(curves_figure, report, figure)


def curves_figure(report: Report, figure: Figure) -> Any:
    """Four panels (train/test x loss/accuracy), one line and band per configuration."""
    from matplotlib.figure import Figure as MplFigure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    configs = [report.config(k) for k in figure.keys]
    fig = MplFigure(figsize=(10, 7 + 0.25 * len(configs)), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True, sharey="row")
    for ax, name in zip(axes.flat, CURVES):
        title, ylabel = CURVES[name]
        title = title.replace("test", "validation") if report.held_out == "val" else title
        for i, c in enumerate(configs):
            curve = c.curves[name]
            color = f"C{i}"
            ax.plot(curve.epochs, curve.mean, marker="o", ms=3, color=color,
                    label=wrap(f"{c.label} ({len(c.seeds)} seeds)", 9.0, SMALL))
            ax.fill_between(curve.epochs, curve.lo, curve.hi, color=color, alpha=0.2, linewidth=0)
        teacher = (report.teacher or {}).get("measured", {}).get(f"{report.held_out}_acc")
        if name == "test_acc" and teacher is not None:  # the teacher's accuracy on the same held-out images
            ax.axhline(teacher, ls="--", color="0.3", label=wrap(f"teacher {report.teacher['from']} ({teacher:.2f}%)",
                                                                    9.0, SMALL))
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        _integer_ticks(ax.xaxis)
        if name.endswith("loss"):  # labels 0.1, 0.2, 0.5, 1, 2 rather than 2 x 10^-1
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    _focus_accuracy(axes[1][0], configs, (report.teacher or {}).get("measured", {}).get(f"{report.held_out}_acc"))
    # below the panels: a long configuration label inside one would squeeze the others
    fig.legend(*axes[1][1].get_legend_handles_labels(), loc="outside lower center", fontsize="small")
    fig.suptitle(wrap(f"{figure.title}: mean over seeds, band = min-max", 9.6, LARGE))
    return fig


def _integer_ticks(axis: Any) -> None:
    """Ticks on whole numbers only (epochs, trial numbers): a 1-epoch run gets the tick 1, not 0.945 … 1.050."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def _focus_accuracy(ax: Any, configs: list[Config], line: float | None = None) -> None:
    """Zoom the accuracy row past the first epoch, where every curve is near its end value (a teacher's `line`
    included)."""
    lows = [v for c in configs for name in ("train_acc", "test_acc") for v in c.curves[name].lo[1:]]
    highs = [v for c in configs for name in ("train_acc", "test_acc") for v in c.curves[name].hi]
    lows, highs = (lows + [line], highs + [line]) if line is not None and len(lows) else (lows, highs)
    if len(lows) and len(configs[0].curves["test_acc"].epochs) > 2:
        lo, hi = min(lows), min(100.0, max(highs))
        ax.set_ylim(lo - 0.1 * (hi - lo + 0.1), hi + 0.05 * (hi - lo + 0.1))


def effects_png(report: Report) -> bytes:
    """Each main effect with its 95% interval, against zero. As PNG bytes."""
    return render(effects_figure, report)


def effects_figure(report: Report) -> Any:
    """Each main effect with its 95% interval, against zero."""
    from matplotlib.figure import Figure as MplFigure

    words, unit = METRIC_WORDS[report.metric]
    effects = [e for e in report.effects if e.decisive[0] is not None]  # the interval the verdict comes from
    boot = any(e.boot_p is not None for e in effects)
    several = len({e.model for e in effects}) > 1
    labels = [_effect_label(e, several) for e in effects]
    over = "paired seeds and test images (bootstrap)" if boot else "paired seeds"
    xlabel = f"change in final {words}{' (' + unit + ')' if unit else ''}\nmean and 95% CI over {over}"
    # as wide as its labels and a plot at least as wide as the x label; as tall as the labels' lines
    width = max(9.0, text_inches("\n".join(labels), SMALL) + max(text_inches(xlabel, 10), 4.5) + 0.8)
    row = max(0.6, 0.16 * max((x.count("\n") + 1 for x in labels), default=1) + 0.15)
    fig = MplFigure(figsize=(width, 1.6 + row * len(effects)), layout="constrained")
    ax = fig.subplots()
    ys = list(range(len(effects)))[::-1]
    for y, e in zip(ys, effects):
        color = {"improves": "C2", "hurts": "C3"}.get(e.verdict, "C7")
        (lo, hi), p = e.decisive
        # a percentile interval need not hold the estimate: never a negative bar
        ax.errorbar([e.delta_mean], [y], xerr=[[max(0.0, e.delta_mean - lo)], [max(0.0, hi - e.delta_mean)]],
                    fmt="o", color=color, capsize=4)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(ys, labels, fontsize=SMALL)
    ax.set_xlabel(xlabel)
    ax.set_ylim(-0.7, len(effects) - 0.3)
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(("Each against the baseline" if report.against_baseline else "Main effects") +
                 " with 95% CI; p Holm-corrected\n"
                 "green: improves, red: hurts, grey: no detectable effect", fontsize="medium")
    return fig


def _effect_label(e: Effect, several: bool) -> str:
    """What changed (the model's name first when there are several), wrapped; then the verdict and p."""
    change = change_text(e).replace(" ", "\N{NO-BREAK SPACE}")  # "(0.0 → 0.0005)" stays on one line
    what = f"{e.model + ': ' if several else ''}{e.factor} ({change})"
    within = f" at {e.within}" if e.within else ""
    label = wrap(what + within, LABEL_INCHES, SMALL)
    if "\n" in label:  # too long for one line: what changed, then where, each wrapped
        label = wrap(what, LABEL_INCHES, SMALL) + "\n" + wrap(within.strip(), LABEL_INCHES, SMALL)
    return f"{label}\n{e.verdict}, {p_text(e.decisive[1])}"


def history_png(s: SearchSummary) -> bytes:
    """Each complete trial's value and the best so far, against the trial number. As PNG bytes."""
    return render(history_figure, s)


def history_figure(s: SearchSummary) -> Any:
    """Each complete trial's value and the best so far, against the trial number."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    if s.history:
        n, v, b = zip(*s.history)
        ax.plot(n, v, "o", ms=4, alpha=0.6, label="complete trial")
        ax.step(n, b, where="post", color="C3", label="best so far")
    ax.set_xlabel("trial number")
    _integer_ticks(ax.xaxis)
    ax.set_ylabel(s.metric.replace("_", " ") + (" (%)" if s.metric.endswith("acc") else ""))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right" if s.direction == "maximize" else "upper right")
    ax.set_title(wrap(f"{s.study}: optimization history", 7.2, LARGE))
    return fig


def search_curves_png(s: SearchSummary) -> bytes:
    """The per-epoch validation metric of every trial; pruned ones dashed, an x where they stopped. As PNG bytes."""
    return render(search_curves_figure, s)


def search_curves_figure(s: SearchSummary) -> Any:
    """The per-epoch validation metric of every trial; pruned ones dashed, an x where they stopped."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    for number, state, values in s.curves:
        epochs = range(1, len(values) + 1)
        if state == "pruned":
            ax.plot(epochs, values, "--", color="C7", lw=0.8, alpha=0.7)
            ax.plot([len(values)], [values[-1]], "x", color="C3", ms=5)
        else:
            ax.plot(epochs, values, "-", color="C0", lw=1, alpha=0.8)
    ax.set_xlabel("epoch")
    _integer_ticks(ax.xaxis)
    ax.set_ylabel(s.metric.replace("_", " ") + (" (%)" if s.metric.endswith("acc") else ""))
    if s.metric.endswith("acc") and s.curves:
        finals = [v[-1] for _, st, v in s.curves if st == "complete" and v]
        if finals:
            ax.set_ylim(min(finals) - 2, min(100.0, max(finals) + 0.5))
    ax.grid(True, alpha=0.3)
    ax.set_title("every trial's validation metric per epoch\nblue: complete; grey dashed: pruned, x = stopped")
    return fig


def confusion_png(m: Mistakes) -> bytes:
    """One confusion matrix per view, rows normalized to the true class (%), side by side. As PNG bytes."""
    return render(confusion_figure, m)


def confusion_figure(m: Mistakes) -> Any:
    """One confusion matrix per view, rows normalized to the true class (%), side by side."""
    from matplotlib.figure import Figure as MplFigure

    k = len(m.names)
    fig = MplFigure(figsize=(4.6 * len(m.views), 5.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(m.views)))
    for ax, v in zip(axes, m.views):
        rows = v.confusion / np.maximum(v.confusion.sum(1, keepdims=True), 1) * 100
        image = ax.imshow(np.where(np.eye(k, dtype=bool), np.nan, rows), cmap="Reds", vmin=0,
                          vmax=max(1.0, float(np.nanmax(np.where(np.eye(k, dtype=bool), 0, rows)))))
        if k <= 12:
            for t in range(k):
                for q in range(k):
                    if v.confusion[t, q] and t != q:  # white on a dark cell, black on a light one
                        ax.text(q, t, str(v.confusion[t, q]), ha="center", va="center", fontsize=7,
                                color=ink(image.cmap(image.norm(rows[t, q]))))
            ticks = list(range(k))
            ax.set_xticks(ticks, m.names, rotation=90 if max(map(len, m.names)) > 2 else 0, fontsize="small")
            ax.set_yticks(ticks, m.names, fontsize="small")
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        label = wrap(f"{v.label}, {v.seeds} seed{'s' if v.seeds != 1 else ''}", 4.2, SMALL)
        ax.set_title(f"{v.role}\n{label}", fontsize="small")
    return fig


def gallery_png(g: Gallery, names: tuple[str, ...]) -> bytes:
    """The shown mistakes as a grid of images, each titled true -> predicted (confidence). As PNG bytes."""
    return render(gallery_figure, g, names)


def gallery_figure(g: Gallery, names: tuple[str, ...]) -> Any:
    """The shown mistakes as a grid of images, each titled true -> predicted (confidence)."""
    from matplotlib.figure import Figure as MplFigure

    cols = 8
    rows = max(1, -(-len(g.shown) // cols))
    fig = MplFigure(figsize=(cols * 1.25, rows * 1.55 + 0.6), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, cols))
    for ax in axes.flat:
        ax.axis("off")
    for ax, mistake, image in zip(axes.flat, g.shown, g.images):
        ax.imshow(image if image.ndim == 2 else image[0], cmap="gray", vmin=0, vmax=255)
        also = "" if mistake.baseline_wrong is None else (" *" if mistake.baseline_wrong else "")
        ax.set_title(f"{names[mistake.true]} → {names[mistake.predicted]}{also}\n{mistake.confidence:.2f}",
                     fontsize=8)
    title = wrap(f"{g.label}, seed {g.seed}", 9.6, SMALL)  # a long label: on lines of its own
    fig.suptitle(title + "\ntrue → predicted, the model's probability"
                 + ("; * the baseline gets it wrong too" if g.baseline else ""), fontsize="small")
    return fig
