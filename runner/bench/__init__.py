"""The runner's benchmarks: they measure the product, they are not part of it.

- `runner bench` (speed.py): the runner's epoch against a bare loop, the course template's
  pipeline (course_template.py) against the runner, time to 99% test accuracy;
- `runner bench floor` (floor.py): the training step and the evaluation against one change at a time;
- `runner bench profile` (profile.py): where one epoch's time goes, stage by stage and operator by operator;
- common.py: what they share.

Import from the module you need (`from runner.bench.speed import run_bench`): this package imports
nothing itself, so that `python -m runner.bench.course_template` loads none of the runner nor torch
before the template's own imports, as a student's process would.
"""
