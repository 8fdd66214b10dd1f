#!/usr/bin/env bash
# Time the README's set-up on a fresh clone of HEAD, as a new user (or CI) meets it: cold caches, a new venv.
#
#   flock /tmp/mhpo-cpu.lock bash perf/fresh_clone.sh         # README command 1, then the vl_tiny target
#   flock /tmp/mhpo-cpu.lock bash perf/fresh_clone.sh --ci    # also .ci/run (README command 2 + Slurm step; root)
#
# The clone sits in $WF/clone; $WF/shared links to this checkout's ../shared when that exists, so `if_available`
# benchmarks (MATH500 in the default) are found as they are next to this checkout. Prints each step's wall time
# and its ratio to the budget it must meet (the README's "about 5 minutes", CI's 20 minutes).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WF="${WF:-$(mktemp -d /tmp/mhpo-perf-fresh.XXXXXX)}"
mkdir -p "$WF"
[[ -d "$ROOT/../shared" ]] && ln -sfn "$(cd "$ROOT/../shared" && pwd)" "$WF/shared"
unset MHPO_CACHE_DIR MHPO_BENCHMARK_DIR  # a new user has neither
rm -rf "$WF/clone" && git clone -q "$ROOT" "$WF/clone"
cd "$WF/clone"
echo "workdir: $WF; commit $(git rev-parse --short HEAD); cores: $(nproc); ../shared: $([[ -e ../shared ]] && echo yes || echo no)"

step() { # step NAME BUDGET_S LOG CMD...: run CMD, print wall time and its ratio to BUDGET_S
	local name="$1" budget="$2" log="$3" a s
	shift 3
	a=$(date +%s)
	"$@" >"$log" 2>&1 || { tail -40 "$log"; echo "$name failed (log: $log)"; exit 1; }
	s=$(($(date +%s) - a))
	echo "$name: ${s} s ($(awk "BEGIN{printf \"%.2f\", $s/$budget}") of ${budget} s)"
}

# README command 1, in two timed halves: the install, then the main job
step "install (python3 -m venv .venv && pip install -e .)" 600 "$WF/install.log" \
	bash -c 'python3 -m venv .venv && . .venv/bin/activate && pip install -q -e .'
# shellcheck disable=SC1091
. .venv/bin/activate
step "main job (snakemake --cores all, cold cache)" 300 "$WF/main.log" snakemake --cores all
echo "  $(grep -c '^Finished jobid' "$WF/main.log" || true) jobs; tables: $(ls results/tables | tr '\n' ' ')"
step "vl_tiny (snakemake --cores all vl_tiny)" 300 "$WF/vl.log" snakemake --cores all vl_tiny
deactivate

if [[ "${1:-}" == --ci ]]; then
	rm -rf "$WF/ci" && git clone -q "$ROOT" "$WF/ci" # CI runs on a clean clone of its own
	cd "$WF/ci"
	step ".ci/run (README command 2 in a fresh venv, then the Slurm step)" 1200 "$WF/ci.log" .ci/run
	grep -E '^[0-9]+ passed' "$WF/ci.log" | sed 's/^/  pytest: /'
	grep -E 'workflow via Slurm done|tables: ' "$WF/ci.log" | sed 's/^\[slurm-ci [0-9:]*\] //; s/^/  /'
fi
