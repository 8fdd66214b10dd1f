#!/usr/bin/env bash
# Time the stability study (docs/stability.md) from scratch, twice, and check that the second run reproduces
# the first one's tables byte for byte (same seeds, same machine).
#
#   flock /tmp/mhpo-cpu.lock bash perf/stability.sh          # two full runs (~2 × 17 min on 2 cores)
#   flock /tmp/mhpo-cpu.lock bash perf/stability.sh --once   # one run, wall time only
#
# Each run: a fresh scratch copy of the workflow files (Snakefile, workflow/, envs/) under $WF/run{1,2},
# `snakemake --cores all stability` (2 tiny models, 48 trainings, 49 evaluations, the analysis). Prints the wall
# time, the ratio to the 30-minute budget, and `same`/`DIFF` per table.
set -euo pipefail
command -v snakemake >/dev/null || { echo "snakemake is not on PATH: activate the project's venv (. .venv/bin/activate) or pip install -e '.[dev]'" >&2; exit 2; }
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WF="${WF:-$(mktemp -d /tmp/mhpo-perf-stability.XXXXXX)}"
export MHPO_CACHE_DIR="${MHPO_CACHE_DIR:-$ROOT/.cache}"
BUDGET_S=1800
echo "workdir: $WF; cores: $(nproc); snakemake $(snakemake --version)"
runs=(1 2)
[[ "${1:-}" == --once ]] && runs=(1)
for i in "${runs[@]}"; do
	d="$WF/run$i"
	rm -rf "$d" && mkdir -p "$d"
	cp -r "$ROOT/Snakefile" "$ROOT/workflow" "$ROOT/envs" "$d/"
	a=$(date +%s)
	(cd "$d" && snakemake --cores all stability >"$d/snakemake.log" 2>&1) || { tail -40 "$d/snakemake.log"; exit 1; }
	s=$(($(date +%s) - a))
	echo "run $i: ${s} s wall ($(awk "BEGIN{printf \"%.2f\", $s/$BUDGET_S}") of the ${BUDGET_S} s budget)"
done
if [[ ${#runs[@]} == 2 ]]; then
	for f in tables/stability.{md,csv,tex} tables/stability_paired.{md,csv,tex} tables/stability_runs.csv stability_summary.md; do
		cmp -s "$WF/run1/results/$f" "$WF/run2/results/$f" && echo "same $f" || echo "DIFF $f"
	done
fi
