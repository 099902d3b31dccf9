"""The report's files: every file rendered in memory, the folder and README checked, then written."""
from __future__ import annotations

import os
from pathlib import Path

from runner.errors import read_text
from runner.models.diagram import diagram_file, diagram_png
from runner.report.build import build_report
from runner.report.contents import REPORT_FILE, SUMMARY_FILE, Report, ReportError
from runner.report.figures import confusion_png, curves_png, effects_png, gallery_png, history_png, search_curves_png
from runner.report.markdown import render_markdown, render_summary
from runner.report.summary import summary_json
from runner.spec import Spec
from runner.store import study_folder

__all__ = ["START_MARKER", "END_MARKER", "default_out_dir", "render_files", "write_report", "update_readme",
           "make_report"]

START_MARKER = "<!-- runner:report:start -->"
END_MARKER = "<!-- runner:report:end -->"


def default_out_dir(study: str) -> Path:
    """reports/<study name>/ under the current directory (a name that is no plain file name: its hash)."""
    return Path("reports") / study_folder(study)


def render_files(report: Report) -> dict[str, bytes]:
    """Every file of the report folder, by name, rendered in memory."""
    files = {REPORT_FILE: render_markdown(report).encode(), SUMMARY_FILE: summary_json(report).encode(),
             "trials.csv": report.raw[0].encode(), "epochs.csv": report.raw[1].encode()}
    if report.search is not None:  # the search's own trials, whose figures the report draws too
        files["search_trials.csv"], files["search_epochs.csv"] = (x.encode() for x in report.search.raw)
    for f in report.figures:
        files[f.file] = curves_png(report, f) if f.kind == "curves" else effects_png(report)
    for t in report.param_tables:
        files[diagram_file(t)] = diagram_png(t)
    if report.mistakes is not None:
        files["confusion.png"] = confusion_png(report.mistakes)
        g = report.mistakes.gallery
        if g is not None and g.images is not None and g.shown:
            files["mistakes.png"] = gallery_png(g, report.mistakes.names)
    if report.search is not None:
        files["search-history.png"] = history_png(report.search)
        files["search-curves.png"] = search_curves_png(report.search)
    return files


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportError(f"{out_dir}: exists and is not a folder; give --out a folder")
    parent = next((p for p in [out_dir, *out_dir.parents] if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ReportError(f"{out_dir}: cannot write here ({parent} is not a writable folder)")


def _write_files(files: dict[str, bytes], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in files.items():
        path = out_dir / name
        path.write_bytes(content)
        paths.append(path)
    return paths


def write_report(report: Report, out_dir: str | Path) -> list[Path]:
    """Write report.md, summary.json and the figures into `out_dir`; return the paths."""
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    return _write_files(render_files(report), out_dir)


def _readme_text(path: Path, report: Report, out_dir: Path) -> str:
    """The README with the summary between its markers; raise ReportError if it has none."""
    text = read_text(path, ReportError, "README")
    start, end = text.find(START_MARKER), text.find(END_MARKER)
    if start < 0 or end < 0 or end < start or text.count(START_MARKER) > 1 or text.count(END_MARKER) > 1:
        raise ReportError(f"{path}: needs one line {START_MARKER} and, after it, one line {END_MARKER} "
                          f"around the results; add them where the results should go")
    link = Path(os.path.relpath(out_dir.absolute(), path.absolute().parent)).as_posix()
    body = render_summary(report, link)
    return text[:start + len(START_MARKER)] + "\n" + body + text[end:]


def update_readme(path: str | Path, report: Report, out_dir: str | Path) -> Path:
    """Replace what lies between the README's runner:report markers with the report's summary."""
    path = Path(path)
    text = _readme_text(path, report, Path(out_dir))
    path.write_text(text, encoding="utf-8")
    return path


def make_report(spec: Spec, url: str | None, out_dir: str | Path | None = None, readme: str | Path | None = None,
                module_version: str | None = None, stored_config: bool = False) -> tuple[Report, list[Path]]:
    """Build the report and write its folder (and the README's summary); check everything first."""
    report = build_report(spec, url, module_version, stored_config)
    out = Path(out_dir) if out_dir is not None else default_out_dir(report.study)
    _check_out_dir(out)
    readme_text = _readme_text(Path(readme), report, out) if readme is not None else None
    files = render_files(report)
    written = _write_files(files, out)
    if readme is not None:
        Path(readme).write_text(readme_text, encoding="utf-8")  # type: ignore[arg-type]
        written.append(Path(readme))
    return report, written
