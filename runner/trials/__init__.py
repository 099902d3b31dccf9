"""Running trials, grid and search alike, through one lifecycle.

- `lifecycle`: prepare the spec and data, claim, the trial's stored record, train with a
  heartbeat, complete / fail / give back.
- `grid`: `run_grid`, a spec's points as trials; `tune`: `run_tune`, the search and its confirmation.
- `pool`: worker processes and signals; `checkpoints`: per-epoch state; `provenance`: what produced a result.
"""
