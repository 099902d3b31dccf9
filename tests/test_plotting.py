"""runner/plotting.py: figures drawn in matplotlib's default style whatever the user's settings, saved as PNG bytes
that are the same for the same figure; text wrapped to a width; ink that contrasts with its background."""
from __future__ import annotations

import matplotlib
import pytest

from runner.plotting import DPI, ink, png, render, style, text_inches, wrap


def _figure(width: float = 2.0):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, 1.0))
    fig.add_subplot().plot([0, 1, 2], [2, 0, 1])
    return fig


def test_the_same_figure_gives_the_same_bytes_with_no_software_named():
    first, again = render(_figure), render(_figure)
    assert first == again and first.startswith(b"\x89PNG")
    assert b"matplotlib" not in first.lower()  # no "Software: Matplotlib version ..." chunk


def test_a_png_is_drawn_at_the_fixed_dpi():
    import io

    from matplotlib import image

    with style():
        pixels = image.imread(io.BytesIO(png(_figure(3.0))))
    assert pixels.shape[:2] == (1 * DPI, 3 * DPI)  # (H, W)


def test_the_style_is_the_default_whatever_the_users_settings(monkeypatch):
    monkeypatch.setitem(matplotlib.rcParams, "lines.linewidth", 9.0)
    with style():
        assert matplotlib.rcParams["lines.linewidth"] == 1.5  # matplotlib's default
        assert matplotlib.get_backend().lower() == "agg"


def test_wrapped_lines_fit_and_a_long_word_stays_whole():
    text = "one two three four five six seven eight nine ten " + "x" * 60
    lines = wrap(text, 1.5, 10).split("\n")
    assert len(lines) > 2 and " ".join(lines) == text
    assert all(text_inches(line, 10) <= 1.5 for line in lines[:-1])
    assert lines[-1] == "x" * 60 and text_inches(lines[-1], 10) > 1.5  # alone on its line
    assert wrap("first\nsecond", 5, 10) == "first\nsecond"  # its own breaks are kept


@pytest.mark.parametrize("rgb, colour", [((1.0, 1.0, 1.0), "black"), ((0.0, 0.0, 0.0), "white"),
                                         ((1.0, 1.0, 0.0), "black"), ((0.0, 0.0, 1.0), "white"),
                                         ((0.5, 0.5, 0.5, 1.0), "black"), ((0.4, 0.4, 0.4), "white")])
def test_ink_is_whichever_of_black_and_white_contrasts_more(rgb, colour):
    assert ink(rgb) == colour
