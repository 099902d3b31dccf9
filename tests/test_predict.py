"""runner/predict.py: `runner predict` on PNGs and arrays gives the classes the trial stored; every
input it cannot read, hostile ones included, is one line and the others go on; an image with no digit-like
content (blank, constant, 1x1, 200x5) gets a best guess and a note; `runner digit` writes a test image."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from runner.data import load_mnist

from tests.helpers import invoke, stored
from tests.helpers import kept_project, kept_trained  # noqa: F401 - fixtures


def test_predict_on_pngs_of_the_test_images_gives_the_stored_classes(project):
    test = load_mnist("", 0, 200).test
    Path("pngs").mkdir()
    for i in range(20):
        Image.fromarray(test.images[i].numpy()).save(f"pngs/{i:03d}.png")
    np.save("more.npy", test.images[20:30].numpy())
    result = invoke("predict", "--study", "k", "0", "pngs", "more.npy", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["predicted"] for r in rows] == stored(0)[:30].tolist()
    assert all(0 < r["probability"] <= 1 and r["note"] == "" for r in rows)
    table = invoke("predict", "--study", "k", "--best", "pngs/000.png")
    assert table.exit_code == 0 and "pngs/000.png" in table.output


def test_a_digit_of_another_size_on_a_light_page_is_resized_and_inverted_with_a_note(project):
    digit = load_mnist("", 0, 1).test.images[0].numpy()
    Image.fromarray(255 - digit).resize((56, 56), Image.BILINEAR).save("mine.png")
    result = invoke("predict", "--study", "k", "0", "mine.png", "--format", "json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert row["note"] == "resized from 56x56 to 28x28; inverted (light background)"
    assert row["predicted"] == stored(0)[0]


def test_an_unreadable_input_is_one_line_and_the_others_go_on(project):
    Path("bad.png").write_text("not an image")
    Image.fromarray(load_mnist("", 0, 1).test.images[0].numpy()).save("ok.png")
    result = invoke("predict", "--study", "k", "0", "bad.png", "missing.png", "ok.png", "--format", "csv")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0] == "input,predicted,class,probability,note" and len(lines) == 4
    assert "not an image runner can read" in lines[1] and "no such file" in lines[2] and lines[3].startswith("ok.png,")


def _bomb(path: str, width: int, height: int) -> None:
    """A tiny PNG whose header claims width x height pixels (as a decompression bomb's does)."""
    import struct
    import zlib

    Image.new("L", (1, 1)).save(path)
    data = bytearray(Path(path).read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr:ihdr + 17])))
    Path(path).write_bytes(bytes(data))


def test_hostile_inputs_are_one_line_each_and_the_others_go_on(project):
    """A decompression bomb, NaN and infinite arrays, an empty file and a symlink loop: one line naming each."""
    import os

    _bomb("bomb.png", 20_000, 20_000)  # 400 megapixels: PIL itself refuses its header
    _bomb("big.png", 8_000, 8_000)  # 64 megapixels: over runner's limit, under PIL's
    np.save("nan.npy", np.full((2, 28, 28), np.nan, dtype=np.float32))
    inf = np.zeros((28, 28), dtype=np.float64)
    inf[3, 4] = np.inf
    np.save("inf.npy", inf)
    Path("empty.png").write_bytes(b"")
    Path("empty.npy").write_bytes(b"")
    os.symlink("loop.png", "loop.png")
    Image.fromarray(load_mnist("", 0, 1).test.images[0].numpy()).save("ok.png")
    names = ["bomb.png", "big.png", "nan.npy", "inf.npy", "empty.png", "empty.npy", "loop.png", "ok.png"]
    result = invoke("predict", "--study", "k", "0", *names, "--format", "json")
    assert result.exit_code == 1 and "Traceback" not in result.output
    rows = {r["input"]: r for r in json.loads(result.output)}
    assert set(rows) == set(names)
    assert "over the 50,000,000 pixels runner reads (a decompression bomb" in rows["bomb.png"]["note"]
    assert rows["big.png"]["note"].startswith("an image of 8,000 x 8,000 pixels, over the 50,000,000 pixels")
    assert rows["nan.npy"]["note"] == "an array with 1,568 NaN or infinite values: nothing to predict from"
    assert rows["inf.npy"]["note"] == "an array with 1 NaN or infinite value: nothing to predict from"
    assert rows["empty.png"]["note"] == rows["empty.npy"]["note"] == "an empty file (0 bytes)"
    assert "symbolic links" in rows["loop.png"]["note"]
    assert all(rows[n]["predicted"] is None for n in names[:-1]) and rows["ok.png"]["predicted"] == stored(0)[0]


def _degenerate_images() -> dict[str, np.ndarray]:
    """Images with no digit-like content, each of one kind the help names."""
    rng = np.random.default_rng(0)
    strip = np.zeros((20, 120), dtype=np.uint8)  # 120x20: sides of 8 px and more, but one 6 times the other
    strip[8:12, 10:110] = 255
    return {"blank.png": np.zeros((28, 28), dtype=np.uint8), "grey.png": np.full((28, 28), 128, dtype=np.uint8),
            "noise.png": rng.integers(200, 211, (28, 28), dtype=np.uint8),  # a white page's noise: 200 to 210
            "dot.png": np.full((1, 1), 255, dtype=np.uint8), "thin.png": rng.integers(0, 256, (5, 200), dtype=np.uint8),
            "strip.png": strip}


def test_an_image_with_no_digit_like_content_gets_a_best_guess_and_a_note(project):
    for name, pixels in _degenerate_images().items():
        Image.fromarray(pixels).save(name)
    Image.fromarray(load_mnist("", 0, 1).test.images[0].numpy()).save("ok.png")
    result = invoke("predict", "--study", "k", "0", *_degenerate_images(), "ok.png", "--format", "json")
    assert result.exit_code == 0, result.output  # a guess is still a prediction
    rows = {r["input"]: r for r in json.loads(result.output)}
    guess = ": the class is a best guess"
    assert rows["blank.png"]["note"] == f"no digit-like content (constant: every pixel 0){guess}"
    assert rows["grey.png"]["note"] == f"no digit-like content (constant: every pixel 128){guess}; inverted (light background)"
    assert rows["noise.png"]["note"] == (f"no digit-like content (nearly constant: grey levels 200 to 210){guess}; "
                                         "inverted (light background)")
    assert rows["dot.png"]["note"] == (f"no digit-like content (1x1, a side under 8 pixels; constant: every pixel 255)"
                                       f"{guess}; resized from 1x1 to 28x28; inverted (light background)")
    assert rows["thin.png"]["note"] == f"no digit-like content (200x5, a side under 8 pixels){guess}; resized from 200x5 to 28x28"
    assert rows["strip.png"]["note"] == (f"no digit-like content (120x20, a side over 4 times the other){guess}; "
                                         "resized from 120x20 to 28x28")
    assert all(0 <= r["predicted"] <= 9 and 0 < r["probability"] <= 1 for r in rows.values())
    assert rows["ok.png"]["note"] == "" and rows["ok.png"]["predicted"] == stored(0)[0]


def test_the_note_says_the_same_for_an_array_and_in_the_table(project):
    np.save("flat.npy", np.full((2, 28, 28), 0.5, dtype=np.float32))  # floats in [0, 1]: 128 every pixel
    table = invoke("predict", "--study", "k", "0", "flat.npy")
    assert table.exit_code == 0, table.output
    lines = [line for line in table.output.splitlines() if line.startswith("flat.npy[")]
    assert len(lines) == 2 and all("no digit-like content (constant: every pixel 128)" in line for line in lines)


def test_the_help_states_what_has_no_digit_like_content():
    from runner.predict import MAX_ASPECT, MIN_CONTRAST, MIN_SIDE

    text = " ".join(invoke("predict", "--help").output.split())
    assert (f"a side under {MIN_SIDE} pixels, a side over {MAX_ASPECT} times the other (200x5), or grey levels "
            f"spanning fewer than {MIN_CONTRAST} of 255 (blank or constant)") in text


def test_digit_writes_a_test_image_as_a_png_and_prints_its_label(project):
    test = load_mnist("", 0, 2).test
    result = invoke("digit", "--index", "1", "--out", "pngs/two.png")
    assert result.exit_code == 0, result.output
    assert result.output == f"wrote pngs/two.png: MNIST test image 1, a {int(test.labels[1])}\n"
    assert (np.array(Image.open("pngs/two.png")) == test.images[1].numpy()).all()
    assert invoke("digit").output == "wrote digit.png: MNIST test image 0, a 7\n"  # the README's
    predicted = invoke("predict", "--study", "k", "0", "digit.png", "--format", "json")
    [row] = json.loads(predicted.output)
    assert row["predicted"] == stored(0)[0] and row["note"] == ""
    assert invoke("digit", "--index", "10000").output.strip() == (
        "Error: --index 10000: MNIST's test set has 10,000 images, 0 to 9,999")
    Path("here").mkdir()
    wrong = invoke("digit", "--out", "here")
    assert wrong.exit_code == 2 and "is a directory" in wrong.output
