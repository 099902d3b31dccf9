"""`runner report`: a study's answer as Markdown, computed from stored trials only (it never trains).

    build_report(spec, url) -> Report       every number the report shows, read from storage
    render_markdown(report) -> str          the full report
    write_report(report, out_dir)           report.md, summary.json and the PNG figures
    update_readme(path, report, out_dir)    the summary between a README's runner:report markers
    make_report(spec, url, out, readme)     all of the above, every input checked before any write

A configuration is the set of complete trials with equal params except the seed; its numbers are
mean ± sample std over seeds. A factor's main effect is the mean of paired differences (on minus
off, same seed, every other param equal) with a t-interval and a paired t-test; the p-values are
Holm-corrected over all the factors tested (and, separately, over all the interactions).
The same stored trials give byte-identical Markdown, JSON and PNGs: nothing depends on the clock.

What the stored trials say (configurations, which trials count, the statistics, the looks of seeds in
rounds) is runner.results, below the report and the rounds alike. The package is cut by stage, and a stage that covers several sections has a module per section:
    contents                  the Report and every part of it, the search's and the mistakes' included
    build, build_search,      storage to Report (the configurations, read by runner.results): effects and
      build_mistakes          setup; the search behind a tuned spec; where the models are wrong
    roles                     which model stands for LeNet-5 and the MLP, the gallery's baseline, the
                              configurations at or near chance and why
    markdown, markdown_search, report.md and the README summary; the search's section, the mistakes'
      markdown_mistakes
    summary                   summary.json
    figures                   every PNG
    files                     checks, then writes
"""
from __future__ import annotations

from runner.report.build import build_report
from runner.report.contents import (REPORT_FILE, SUMMARY_FILE, Config, Curve, Effect, Excluded, Figure, Known,
                                    Report, ReportError)
from runner.report.figures import curves_png, effects_png
from runner.report.files import (END_MARKER, START_MARKER, default_out_dir, make_report, render_files, update_readme,
                                 write_report)
from runner.report.markdown import (comparison_table, effect_sentence, effects_table, interaction_sentence,
                                    render_markdown, render_summary)
from runner.report.summary import summary_json
from runner.results.stats import holm

__all__ = [
    "ReportError", "Curve", "Config", "Effect", "Known", "Excluded", "Figure", "Report",
    "build_report", "render_markdown", "render_summary", "summary_json", "render_files", "write_report",
    "update_readme", "make_report", "default_out_dir", "holm", "effect_sentence", "interaction_sentence",
    "comparison_table", "effects_table", "curves_png", "effects_png", "REPORT_FILE", "SUMMARY_FILE",
    "START_MARKER", "END_MARKER",
]
