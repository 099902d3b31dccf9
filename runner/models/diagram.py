"""One picture per model: its layers top to bottom, each with its output shape and parameter count.

Drawn from a layer table alone (`counts.LayerRow`), so the report can draw a user's module from
the table stored with its trials, without importing it. Byte-identical for the same table.
"""
from __future__ import annotations

from typing import Any

from runner.models.counts import UNUSED, LayerRow, ParamTable
from runner.plotting import render, text_inches, wrap
from runner.text import file_slug, format_shape, plural

__all__ = ["diagram_png", "diagram_figure", "diagram_file"]

# Box colour by the first word of a row's type.
COLORS = {"conv": "#cfe2f3", "max": "#d9ead3", "avg": "#d9ead3", "adaptive": "#d9ead3", "fc": "#fce5cd",
          "batch": "#eeeeee", "dropout": "#eeeeee", "flatten": "#ffffff", "softmax": "#f4cccc", "log": "#f4cccc",
          **dict.fromkeys(("relu", "tanh", "sigmoid", "gelu", "leaky", "elu", "silu", "selu", "softplus", "hardtanh",
                           "p"), "#fff2cc")}
INPUT_COLOR = "#ffffff"
TITLE_SIZE, DETAIL_SIZE = 10, 8.5  # points: a box's bold title line, its monospace detail line
OTHER_COLOR = "#ead1dc"


def _boxes(table: ParamTable, input_shape: tuple[int, ...] | None) -> list[tuple[str, str, str]]:
    """(title line, detail line, colour) per box, top to bottom."""
    rows: list[LayerRow] = [r for r in table.rows if r.kind != UNUSED]
    boxes = []
    if input_shape is not None and not (rows and rows[0].name == "input"):
        boxes.append(("input", format_shape(input_shape), INPUT_COLOR))
    for r in rows:
        if r.name == "input":
            boxes.append((f"input{': ' + r.kind if r.kind else ''}", format_shape(r.shape), INPUT_COLOR))
            continue
        color = COLORS.get(r.kind.split(" ")[0], OTHER_COLOR)
        params = plural(r.count, "parameter") if r.count else "no parameters"
        params += f" = {r.formula}" if r.count and r.formula and r.formula != str(r.count) else ""
        out = f"out {format_shape(r.shape)}   " if r.shape else ""
        boxes.append((f"{r.name}: {r.kind}", out + params, color))
    return boxes


def diagram_png(table: ParamTable, input_shape: tuple[int, ...] | None = None) -> bytes:
    """The diagram (`diagram_figure`) as PNG bytes."""
    return render(diagram_figure, table, input_shape)


def diagram_figure(table: ParamTable, input_shape: tuple[int, ...] | None = None) -> Any:
    """The model's layers as a column of boxes joined by arrows, titled with the total count.

    Args:
        input_shape: (C, H, W) of the data, drawn as the first box unless the table starts with
            its input row.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    boxes = _boxes(table, input_shape)
    step = 1.0  # vertical distance between box centres, in data units
    height = 0.62
    # as wide as the widest box text: a box spans 0.9 of the plot, its text keeps a margin inside it
    widest = max((max(text_inches(t, TITLE_SIZE, "bold"), text_inches(d, DETAIL_SIZE, family="monospace"))
                  for t, d, _ in boxes), default=0.0)
    width = max(7.2, widest / 0.85 + 0.2)
    unused = f"\n{table.unused_line()}" if table.unused_line() else ""
    title = wrap(f"{table.title}: {table.total:,} parameters{unused}", width - 0.3, 11)
    fig = Figure(figsize=(width, 0.9 + 0.2 * title.count("\n") + 0.62 * len(boxes)), layout="constrained")
    ax = fig.subplots()
    for i, (name, detail, color) in enumerate(boxes):
        y = -i * step
        ax.add_patch(FancyBboxPatch((0.05, y - height / 2), 0.9, height, boxstyle="round,pad=0.02",
                                    facecolor=color, edgecolor="#444444", linewidth=1))
        ax.text(0.5, y + 0.12, name, ha="center", va="center", fontsize=TITLE_SIZE, fontweight="bold")
        ax.text(0.5, y - 0.14, detail, ha="center", va="center", fontsize=DETAIL_SIZE, family="monospace")
        if i:
            ax.annotate("", xy=(0.5, y + height / 2 + 0.02), xytext=(0.5, y + step - height / 2 - 0.04),
                        arrowprops={"arrowstyle": "-|>", "color": "#444444", "lw": 1})
    ax.set_xlim(0, 1)
    ax.set_ylim(-(len(boxes) - 1) * step - 0.5, 0.5)
    ax.axis("off")
    ax.set_title(title, fontsize=11)
    return fig


def diagram_file(table: ParamTable) -> str:
    """The diagram's file name: model-<title as a short, stable slug>.png (runner.text.file_slug)."""
    return f"model-{file_slug(table.title)}.png"
