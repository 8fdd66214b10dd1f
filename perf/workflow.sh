#!/usr/bin/env bash
# Time the workflow: the embedded tiny default from scratch, a no-op rerun, and aggregation of 10,000 records.
#
#   bash perf/workflow.sh            # all three
#   bash perf/workflow.sh --no-full  # skip the full run (no-op timing then needs an earlier run in $WF)
#
# Runs in a scratch copy of the workflow files (Snakefile, workflow/, envs/) under $WF (default: a new temp dir),
# with the repository's cache (MHPO_CACHE_DIR) and the installed package. Targets: default < 5 min on 2 cores,
# no-op rerun < 5 s, aggregating 10,000 records < 2 s.
set -euo pipefail
command -v snakemake >/dev/null || { echo "snakemake is not on PATH: activate the project's venv (. .venv/bin/activate) or pip install -e '.[dev]'" >&2; exit 2; }
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WF="${WF:-$(mktemp -d /tmp/mhpo-perf-wf.XXXXXX)}"
export MHPO_CACHE_DIR="${MHPO_CACHE_DIR:-$ROOT/.cache}"
PY="${PYTHON:-python}"
t() { "$PY" -c 'import time; print(f"{time.time():.3f}")'; }
dt() { "$PY" -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }

mkdir -p "$WF"
cp "$ROOT/Snakefile" "$WF/"
rm -rf "$WF/workflow" "$WF/envs"
cp -r "$ROOT/workflow" "$ROOT/envs" "$WF/"
cd "$WF"
echo "workdir: $WF; cores: $(nproc); snakemake $(snakemake --version)"

if [[ "${1:-}" != --no-full ]]; then
	rm -rf results .snakemake
	a=$(t)
	snakemake --cores all >"$WF/full.log" 2>&1 || { tail -40 "$WF/full.log"; exit 1; }
	b=$(t)
	njobs=$(grep -c '^Finished jobid' "$WF/full.log" || true)
	echo "embedded default (snakemake --cores all, from scratch, $njobs jobs): $(dt "$a" "$b") s"
fi

best=""
for _ in 1 2 3; do
	a=$(t)
	out=$(snakemake --cores all 2>&1)
	b=$(t)
	grep -q "Nothing to be done" <<<"$out" || { echo "$out" | tail -20; echo "rerun was not a no-op"; exit 1; }
	s=$(dt "$a" "$b")
	best=$("$PY" -c "import sys; v=[float(x) for x in sys.argv[1:] if x]; print(min(v))" "$s" "$best")
done
echo "no-op rerun (snakemake --cores all, nothing to do): best of 3 $best s"

cd "$ROOT"
"$PY" perf/aggregate.py --records 10000 --repeats 3
