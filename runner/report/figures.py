"""The report's figures: learning curves and main effects, rendered to PNG bytes by matplotlib."""
from __future__ import annotations

from typing import Any

from runner.plotting import DPI, png as _png, style as _style
from runner.report.data import CURVES, Config, Figure, Report
from runner.report.markdown import METRIC_WORDS, change_text, p_text

__all__ = ["DPI", "curves_png", "effects_png"]

def curves_png(report: Report, figure: Figure) -> bytes:
    """Four panels (train/test x loss/accuracy), one line and band per configuration."""
    from matplotlib.figure import Figure as MplFigure
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    configs = [report.config(k) for k in figure.keys]
    with _style():
        fig = MplFigure(figsize=(10, 7 + 0.25 * len(configs)), layout="constrained")
        axes = fig.subplots(2, 2, sharex=True, sharey="row")
        for ax, name in zip(axes.flat, CURVES):
            title, ylabel = CURVES[name]
            for i, c in enumerate(configs):
                curve = c.curves[name]
                color = f"C{i}"
                ax.plot(curve.epochs, curve.mean, marker="o", ms=3, color=color,
                        label=f"{c.label} ({len(c.seeds)} seeds)")
                ax.fill_between(curve.epochs, curve.lo, curve.hi, color=color, alpha=0.2, linewidth=0)
            ax.set_title(title)
            ax.set_ylabel(ylabel)
            ax.grid(True, alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if name.endswith("loss"):  # labels 0.1, 0.2, 0.5, 1, 2 rather than 2 x 10^-1
                ax.set_yscale("log")
                ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
                ax.yaxis.set_minor_formatter(NullFormatter())
        for ax in axes[1]:
            ax.set_xlabel("epoch")
        _focus_accuracy(axes[1][0], configs)
        # below the panels: a long configuration label inside one would squeeze the others
        fig.legend(*axes[1][1].get_legend_handles_labels(), loc="outside lower center", fontsize="small")
        fig.suptitle(f"{figure.title}: mean over seeds, band = min-max")
        return _png(fig)


def _focus_accuracy(ax: Any, configs: list[Config]) -> None:
    """Zoom the accuracy row past the first epoch, where every curve is near its end value."""
    lows = [v for c in configs for name in ("train_acc", "test_acc") for v in c.curves[name].lo[1:]]
    highs = [v for c in configs for name in ("train_acc", "test_acc") for v in c.curves[name].hi]
    if len(lows) and len(configs[0].curves["test_acc"].epochs) > 2:
        lo, hi = min(lows), min(100.0, max(highs))
        ax.set_ylim(lo - 0.1 * (hi - lo + 0.1), hi + 0.05 * (hi - lo + 0.1))


def effects_png(report: Report) -> bytes:
    """Each main effect with its 95% interval, against zero."""
    from matplotlib.figure import Figure as MplFigure

    words, unit = METRIC_WORDS[report.metric]
    effects = [e for e in report.effects if e.decisive[0] is not None]  # the interval the verdict comes from
    boot = any(e.boot_p is not None for e in effects)
    several = len({e.model for e in effects}) > 1
    with _style():
        fig = MplFigure(figsize=(9, 1.4 + 0.6 * len(effects)), layout="constrained")
        ax = fig.subplots()
        ys = list(range(len(effects)))[::-1]
        for y, e in zip(ys, effects):
            color = {"improves": "C2", "hurts": "C3"}.get(e.verdict, "C7")
            (lo, hi), p = e.decisive
            # a percentile interval need not hold the estimate: never a negative bar
            ax.errorbar([e.delta_mean], [y], xerr=[[max(0.0, e.delta_mean - lo)], [max(0.0, hi - e.delta_mean)]],
                        fmt="o", color=color, capsize=4)
        ax.axvline(0.0, color="black", linewidth=0.8)
        prefix = (lambda e: f"{e.model}: ") if several else (lambda e: "")
        ax.set_yticks(ys, [f"{prefix(e)}{e.factor} ({change_text(e)})\n{e.verdict}, {p_text(e.decisive[1])}"
                           for e in effects], fontsize="small")
        over = "paired seeds and test images (bootstrap)" if boot else "paired seeds"
        ax.set_xlabel(f"change in final {words}{' (' + unit + ')' if unit else ''}, mean and 95% CI over {over}")
        ax.set_ylim(-0.7, len(effects) - 0.3)
        ax.grid(True, axis="x", alpha=0.3)
        ax.set_title("Main effects with 95% CI; p Holm-corrected\n"
                     "green: improves, red: hurts, grey: no detectable effect", fontsize="medium")
        return _png(fig)
