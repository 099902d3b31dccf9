"""`runner report`, `studies`, `trials`, `show`, `export`, `predict`: what reads stored results; `digit`: a test
image to give predict."""
from __future__ import annotations

import sys
from typing import Any

import click

from runner.cli.base import artifacts_option, cli, format_option, reader, storage_option, user_errors
from runner.text import plural, text_table, toml_value

__all__ = ["report", "studies", "trials", "show", "export", "predict", "digit"]


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@storage_option
@click.option("--out", metavar="DIR", type=click.Path(file_okay=False), default=None,
              help="Folder of the report [default: reports/<study name>/]")
@click.option("--readme", metavar="FILE", type=click.Path(dir_okay=False), default=None,
              help="Also refresh the results between this README's <!-- runner:report:start --> "
                   "and <!-- runner:report:end --> lines.")
@click.option("--module-version", metavar="SHA256|any", default=None,
              help="Report the trials an earlier version of your model's file made: its SHA-256 (the first 12 "
                   "digits the report names are enough), or any for every stored version. By default only the "
                   "file there now counts (an edit of comments, docstrings or formatting keeps its trials).")
@click.option("--stored-config", is_flag=True,
              help="Report the stored trials of SPEC's points (model, axes, seed) whatever config they were made "
                   "with: after an edit of [train] or [data] changed them all. The report's setup shows what they "
                   "stored, and a note names each field that differs.")
@user_errors
def report(spec_path: str, storage: str | None, out: str | None, readme: str | None,
           module_version: str | None, stored_config: bool) -> None:
    """Write SPEC's study as a Markdown report, with figures and summary.json.

    The report holds the setup, parameter counts, learning curves, a comparison of every
    configuration, LeNet-5 against LeCun et al. 1998, and whether each regularizer helps.
    It reads only the stored trials (it never trains): failed and running trials are listed and
    left out of the statistics. The same trials give byte-identical files. Every input is checked
    before any file is written.

    \b
    Examples:
      runner report specs/regularization.toml                    # writes reports/regularization/
      runner report specs/regularization.toml --readme README.md # also refreshes the README
      runner report specs/smoke.toml --storage sqlite:///elsewhere.sqlite --out /tmp/smoke
    """
    from runner.report import make_report
    from runner.spec import load_spec

    result, written = make_report(load_spec(spec_path, missing_code_ok=True, storage=storage), storage, out, readme, module_version,
                                  stored_config)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    trials = sum(len(c.seeds) for c in result.configs)
    left_out = f"; {plural(len(result.excluded), 'trial')} left out (see the report)" if result.excluded else ""
    click.echo(f"{result.study}: {plural(trials, 'trial')} in {plural(len(result.configs), 'configuration')}"
               f"{left_out}")
    for path in written:
        click.echo(f"wrote {path}")


@cli.command()
@storage_option
@format_option
@user_errors
def studies(storage: str | None, fmt: str) -> None:
    """Every study in the storage: its trials by state and its best value.

    Interrupted trials (Ctrl-C, a worker stopped and its point taken over: the point runs again, from
    its checkpoint), a search's pruned trials and its draws refused over [search].max_params are in
    columns of their own, where there are any, apart from the failed; a column test, "locked" or
    "open", where a study's test set is locked.

    \b
    Example:
      runner studies
      runner studies --storage sqlite:///db/other.sqlite --format json
    """
    from runner.query import render, study_rows

    rows = study_rows(reader(storage))
    columns = ["study", "direction", "trials", "complete", "running", "fail", "best_value"]
    # stopped from outside, its point run again; a search's: pruned, and drawn over [search].max_params
    for extra in ("interrupted", "pruned", "refused"):
        if any(r[extra] for r in rows):
            columns.insert(columns.index("best_value"), extra)
    if any(r["test"] == "locked" for r in rows):  # its best value is a validation metric's
        columns.append("test")
    click.echo(render(rows, columns, fmt) if rows else "no studies in this storage")


@cli.command()
@click.option("--study", "study_name", required=True, help="The study's name ([study].name of its spec).")
@storage_option
@click.option("--where", metavar="FILTER", help='e.g. "model = lenet5 and dropout > 0 and augment = affine"')
@click.option("--sort", metavar="KEY", help="Sort by KEY ascending, -KEY descending (e.g. -test_acc).")
@click.option("--limit", type=click.IntRange(0), help="Show at most N trials (after sorting).")
@click.option("--columns", metavar="A,B,C", help="Columns to show, comma-separated.")
@click.option("--group-by", metavar="A,B", help="Group complete trials by these keys: mean ± std and n over seeds.")
@format_option
@user_errors
def trials(study_name: str, storage: str | None, where: str | None, sort: str | None, limit: int | None,
           columns: str | None, group_by: str | None, fmt: str) -> None:
    """A table of a study's trials: number, state, model, axes, seed, final metrics, seconds.

    Accuracies are in percent, of the last stored epoch; best_test_acc is the best epoch's;
    seconds is the training time summed over epochs. A study whose test set is locked
    ([study].test = "locked") has no test column. A filter is KEY OP VALUE clauses joined
    by "and" / "or"; KEY is model, seed, state, number, an axis or a metric; OP is one of
    = != < <= > >=. Reading never writes to the storage.

    \b
    Examples:
      runner trials --study regularization
      runner trials --study regularization --where "model = lenet5 and dropout > 0 and augment = affine" --sort -test_acc --limit 5
      runner trials --study regularization --where "state != complete"
      runner trials --study regularization --group-by batch_norm,augment
      runner trials --study regularization --format csv > trials.csv
    """
    from runner.query import RAN, QueryError, group, refuse_locked, render, select, trial_records

    records, axes, metrics = trial_records(reader(storage), study_name)
    rows = select(records, axes, where, sort if not group_by else None, None if group_by else limit, metrics)
    if group_by:
        by = [k.strip() for k in group_by.split(",") if k.strip()]
        rows = group(rows, axes, by, metrics)
        if sort:
            key = sort.lstrip("-")
            rows = select([{**r, key: r.get(f"{key}_mean", r.get(key))} for r in rows], axes + ["n"], None, sort,
                          metrics=metrics)
        rows = rows[:limit] if limit is not None else rows
        default = [*by, "n", *_shown_metrics(records, metrics)]
    else:
        varied = [a for a in axes if len({r[a] for r in records}) > 1]
        ran = RAN if "epochs" in axes else "epochs"  # the epochs each trial ran, beside a planned epochs axis
        default = ["number", "state", "model", *varied, "seed", ran, *_shown_metrics(records, metrics)]
        default += ["fail_reason"] if any(r["fail_reason"] for r in rows) else []
    if columns:
        shown = [c.strip() for c in columns.split(",")]
    elif fmt in ("json", "csv") and rows:  # for machines: every field
        shown = [k.removesuffix("_mean") for k in rows[0] if not k.endswith("_std")]
    else:
        shown = default
    known = set(default) | set(records[0] if records else ()) | {"n"}
    unknown = [c for c in shown if c not in known]
    for c in unknown:
        refuse_locked("--columns", c, metrics)
    if unknown:
        raise QueryError(f"--columns: unknown column {unknown[0]!r}; columns: {', '.join(sorted(known))}")
    click.echo(render(rows, shown, fmt, grouped=bool(group_by)) if rows else "no trials match")


def _shown_metrics(records: list[dict[str, Any]], metrics: tuple[str, ...]) -> list[str]:
    from runner.query import VAL_METRICS

    has_val = any(r.get("val_acc") is not None for r in records)
    return [m for m in metrics if has_val or m not in VAL_METRICS]


@cli.command()
@click.option("--study", "study_name", required=True, help="The study's name.")
@click.argument("number", type=int)
@storage_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@user_errors
def show(study_name: str, number: int, storage: str | None, fmt: str) -> None:
    """One trial NUMBER: its resolved config, provenance and per-epoch metrics.

    \b
    Example:
      runner show --study regularization 17
      runner show --study regularization 17 --format json
    """
    import json

    from runner.query import render, trial_detail

    d = trial_detail(reader(storage), study_name, number)
    if fmt == "json":
        click.echo(json.dumps(d, indent=2))
        return
    value = "" if d["value"] is None else f", value {d['value']:g}"
    click.echo(f"trial {d['number']} of {d['study']}: {d['state']}{value}")
    click.echo(f"started {d['started']}, completed {d['completed'] or '-'}\n")
    click.echo("params:\n" + "\n".join(f"  {k} = {toml_value(v)}" for k, v in d["params"].items()))
    click.echo("\nconfig:\n" + json.dumps(d["config"], indent=2))
    click.echo("\nprovenance:\n" + "\n".join(f"  {k}: {v}" for k, v in sorted(d["provenance"].items())))
    if d["weights"]:
        click.echo(f"\nweights: {d['weights']}" + (f" (runner export --study {study_name} {number} --out FILE)"
                                                    if d["weights"].startswith("kept") else ""))
    columns = ["epoch", "train_loss", "train_acc", *(["val_loss", "val_acc"] if any(e["val_acc"] is not None
                                                                                   for e in d["epochs"]) else []),
               *(["test_loss", "test_acc"] if all("test_acc" in e for e in d["epochs"]) else []),  # none: locked
               "lr", "seconds"]
    click.echo("\nepochs:\n" + (render(d["epochs"], columns, "table") if d["epochs"] else "  none stored"))


def _trial_choice(number: int | None, best: bool) -> int | None:
    if (number is None) == (not best):
        raise click.UsageError("give a trial NUMBER or --best (the study's best trial by its metric), not both")
    return number


@cli.command(name="export")
@click.option("--study", "study_name", required=True, help="The study's name.")
@click.argument("number", type=int, required=False)
@click.option("--best", is_flag=True, help="The study's best trial by its metric, instead of NUMBER.")
@click.option("--out", metavar="FILE", type=click.Path(dir_okay=False), required=True, help="The file to write.")
@click.option("--format", "fmt", type=click.Choice(["runner", "torchscript"]), default="runner", show_default=True,
              help="runner: weights and what rebuilds the model (runner.load_model); torchscript: torch.jit.load.")
@storage_option
@artifacts_option
@click.option("--module-dir", metavar="DIR", default=None,
              help="For a trial of your own module whose folder moved: the folder that holds its file (checked "
                   "against its SHA-256) [default: the folder runner grid found it in, else the current one]")
@user_errors
def export(study_name: str, number: int | None, best: bool, out: str, fmt: str, storage: str | None,
           artifacts: str | None, module_dir: str | None) -> None:
    """Write a trial's trained model to one self-contained file.

    The file holds the weights (a state_dict), the model's config, the normalization, the input
    transform and the class count and names: `runner.load_model(FILE)` turns it back into an
    nn.Module in eval mode, without the spec, that takes the dataset's images as uint8
    (N, C, H, W) and returns logits. --format torchscript writes the same model, traced, for
    `torch.jit.load` without runner. The weights are checked against the SHA-256 stored with the
    trial; a trial of your own module needs that module's file, unchanged, and finds it where
    `runner grid` did (--module-dir for a folder that moved).

    \b
    Examples:
      runner export --study regularization --best --out lenet5.pt
      runner export --study regularization 17 --out t17.pt --format torchscript
      python -c "import runner; print(runner.load_model('lenet5.pt'))"
    """
    from runner import record
    from runner.export import export_model

    trial, path = export_model(reader(storage), study_name, _trial_choice(number, best), out, fmt, artifacts,
                               module_dir)
    stored = record.of(trial)
    click.echo(f"wrote {path}: trial {trial.number} of {study_name} ({stored.label or ''}, "
               f"seed {trial.params.get('seed')}, {stored.param_count or 0:,} parameters)")


@cli.command()
@click.option("--study", "study_name", required=True, help="The study's name.")
@click.argument("args", nargs=-1, required=True, metavar="(NUMBER | --best) INPUT...")
@click.option("--best", is_flag=True, help="The study's best trial by its metric, instead of NUMBER.")
@storage_option
@artifacts_option
@click.option("--module-dir", metavar="DIR", default=None,
              help="For a trial of your own module whose folder moved: the folder that holds its file "
                   "[default: the folder runner grid found it in, else the current one]")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@user_errors
def predict(study_name: str, args: tuple[str, ...], best: bool, storage: str | None, artifacts: str | None,
            module_dir: str | None, fmt: str) -> None:
    """What a trial's model predicts for your own images.

    INPUT is a PNG or JPEG file, a folder of them, or a .npy array ((H, W), (N, H, W) or
    (N, C, H, W), uint8 or floats in [0, 1]). Each image is prepared as the trial's data was:
    greyscale, the dataset's size (another size is resized, with a note), a light digit on a dark
    background (a light page is inverted, with a note), then the stored normalization and input
    transform. One line per image: the input, the predicted class (with the dataset's class names,
    Fashion-MNIST's "Sneaker") and its probability (a model whose forward ends in softmax is read
    as giving probabilities). An input that cannot be read is one line saying so, and the others
    go on (the exit code is then 1).

    An image with no digit-like content gets the model's best guess and the note "no digit-like
    content": one with a side under 8 pixels, a side over 4 times the other (200x5), or grey
    levels spanning fewer than 32 of 255 (blank or constant), as given, before resizing.

    \b
    Examples:
      runner digit --index 0 --out digit.png
      runner predict --study regularization --best digit.png
      runner predict --study regularization --best my_digit.png
      runner predict --study regularization 17 digits/ --format csv
      runner predict --study fashion_mnist --best shoes.npy --format json
    """
    import json

    from runner import record
    from runner.predict import predict_images, prediction_rows

    if not best:
        if not args or not args[0].isdigit():
            raise click.UsageError("give a trial NUMBER first, or --best (the study's best trial), then INPUT...")
        number, inputs = int(args[0]), list(args[1:])
    else:
        number, inputs = None, list(args)
    if not inputs:
        raise click.UsageError("give at least one INPUT: an image, a folder of images or a .npy array")
    trial, predictions = predict_images(reader(storage), study_name, number, inputs, artifacts, module_dir)
    rows = prediction_rows(predictions)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "csv":
        from runner.query import render

        click.echo(render(rows, list(rows[0]), "csv"))
    else:
        click.echo(f"trial {trial.number} of {study_name}: {record.of(trial).label or ''} seed "
                   f"{trial.params.get('seed')}", err=True)
        click.echo(text_table(["input", "class", "probability", "note"],
                              [[r["input"], r["class"] or "-", "-" if r["probability"] is None else
                                f"{r['probability']:.3f}", r["note"]] for r in rows]))
    if any(p.predicted is None for p in predictions):
        sys.exit(1)


@cli.command()
@click.option("--index", type=click.IntRange(0), default=0, show_default=True,
              help="Which test image: 0 is the first of the 10,000.")
@click.option("--out", metavar="FILE", type=click.Path(dir_okay=False), default="digit.png", show_default=True,
              help="The PNG to write.")
@user_errors
def digit(index: int, out: str) -> None:
    """Write a test image of MNIST as a PNG, and print its label: something to try runner predict on.

    The image is MNIST's test image number --index (the packaged copy: no download), 28x28
    greyscale, a light digit on a dark background, as the models see them.

    \b
    Examples:
      runner digit --index 0 --out digit.png     # a 7
      runner digit --index 1 --out two.png
    """
    from runner.predict import write_test_digit

    label = write_test_digit(index, out)
    click.echo(f"wrote {out}: MNIST test image {index}, a {label}")
