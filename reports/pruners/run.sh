#!/bin/bash
# The pruner comparison of the README ("Which pruner, measured"): specs/tune_lenet.toml's search with
# each pruner, the same 12 minutes each (timeout), --workers 2, one after the other, no confirmation.
# Run from a checkout with runner installed:  OUT=/tmp/prune bash reports/pruners/run.sh
# then:  python reports/pruners/table.py /tmp/prune > reports/pruners/table.md
set -u
OUT=${OUT:-/tmp/prune}
mkdir -p "$OUT"
arm() {  # a name, then the [search] lines that replace the spec's pruner lines
  name=$1; shift
  {
    sed -n '1,/^\[search\]$/p' specs/tune_lenet.toml | sed "s/^name = \"tune_lenet\"/name = \"prune_$name\"/"
    printf '%s\n' "$@"
    sed '1,/^\[search\]$/d' specs/tune_lenet.toml | sed -e 's/^timeout = .*/timeout = "12m"/' -e 's/^trials = .*/trials = 500/' \
      -e '/^pruner = /d' -e '/^warmup_epochs = /d' -e '/^patience = /d'
  } > "$OUT/$name.toml"
  start=$(date +%s)
  runner tune "$OUT/$name.toml" --workers 2 --storage "sqlite:///$OUT/prune.sqlite" --no-confirm --quiet > "$OUT/$name.log" 2>&1
  echo "$name rc=$? seconds=$(( $(date +%s) - start ))" >> "$OUT/times.txt"
}
arm median 'pruner = "median"' 'warmup_epochs = 2' 'patience = 0'
arm patient 'pruner = "median"' 'warmup_epochs = 4' 'patience = 2'
arm hyperband 'pruner = "hyperband"'
arm none 'pruner = "none"'
