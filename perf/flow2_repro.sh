#!/usr/bin/env bash
# Flow 2 reproduces Flow 1: run the default workflow (Flow 1, evaluation batch size 64) in a scratch copy, then the
# README's own `flow1-again.yaml` (Flow 2, batch size 8) on its checkpoints, and compare the main tables byte for
# byte (the training-signal table too). Exit 0 only if they are identical.
#
#   flock /tmp/mhpo-cpu.lock bash perf/flow2_repro.sh [SCRATCH_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WF="${1:-$(mktemp -d)/wf}"
mkdir -p "$WF"
cp "$ROOT/Snakefile" "$WF/"
cp -r "$ROOT/workflow" "$ROOT/envs" "$WF/"
cd "$WF"
export PATH="$(dirname "$(command -v python)"):$PATH"   # the rules call mhpo-bench: the same environment
export MHPO_CACHE_DIR="${MHPO_CACHE_DIR:-$ROOT/.cache}"
python - "$ROOT/README.md" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
block = next(b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if b.startswith("# flow1-again.yaml"))
open("flow1-again.yaml", "w").write(block)
PY
t0=$(date +%s)
python -m snakemake --cores 2 > flow1.log 2>&1
t1=$(date +%s)
python -m snakemake --cores 2 --configfile flow1-again.yaml > flow2.log 2>&1
t2=$(date +%s)
echo "Flow 1: $((t1 - t0)) s; Flow 2: $((t2 - t1)) s (scratch: $WF)"
grep -c "rule train:" flow2.log && { echo "Flow 2 trained something"; exit 1; } || true
status=0
for f in main.md main.csv main.tex training_signals.md training_signals.csv; do
  if cmp -s "results/tables/$f" "results/flow1-again/tables/$f"; then echo "identical: tables/$f"
  else echo "DIFFERENT: tables/$f"; diff "results/tables/$f" "results/flow1-again/tables/$f" | head -20; status=1; fi
done
exit $status
