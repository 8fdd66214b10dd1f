#!/usr/bin/env bash
# perf/gpu_smoke.sh -- the GPU paths on one GPU, in under 10 minutes:
#
#   1. the tiny recipe trained on CUDA in bf16 (8 steps, a checkpoint at step 4);
#   2. where vLLM is installed: the same with vLLM colocated generation (recipe vllm.mode: colocate);
#   3. where vLLM is installed: evaluation of the bf16 run's final/ with the vLLM backend, beside the hf backend.
#
#   perf/gpu_smoke.sh [OUT_DIR]        # OUT_DIR: scratch for the runs (default: a temp dir)
#
# Each step has its own time limit and its outcome (ok / FAILED / skipped, seconds, the last lines of its log on
# failure) is written into perf/README.md between the "gpu-smoke" markers, with the date and the GPU. Without a
# CUDA GPU it says so and exits 0, writing nothing. Exit status: 1 if a step that ran failed.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
cd "$REPO"
PY="${PYTHON:-python3}"

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
	echo "gpu_smoke: no CUDA GPU visible here (torch.cuda.is_available() is False): nothing to run, perf/README.md unchanged"
	exit 0
fi

OUT="${1:-$(mktemp -d /tmp/mhpo-gpu-smoke.XXXXXX)}"
mkdir -p "$OUT"
export MHPO_CACHE_DIR="${MHPO_CACHE_DIR:-$REPO/.cache}"
GPU="$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -n 1)"
T0=$SECONDS
RESULTS="$OUT/results.tsv"
: >"$RESULTS"

# step NAME TIMEOUT_S CMD...: run, record "name<TAB>status<TAB>seconds<TAB>log" in $RESULTS
step() {
	local name="$1" limit="$2" t=$SECONDS rc
	shift 2
	echo "gpu_smoke: $name ..."
	timeout -s KILL "$limit" "$@" >"$OUT/$name.log" 2>&1
	rc=$?
	local status=ok
	[[ $rc -eq 0 ]] || status="FAILED (rc=$rc$([[ $rc -eq 137 ]] && echo ", over ${limit} s"))"
	printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - t))" "$OUT/$name.log" >>"$RESULTS"
	echo "gpu_smoke: $name: $status in $((SECONDS - t)) s"
	return $rc
}
skip() { printf '%s\tskipped (%s)\t0\t-\n' "$1" "$2" >>"$RESULTS"; echo "gpu_smoke: $1: skipped ($2)"; }

TINY=(--config tiny --objective mhpo --seed 0 --set precision=bf16 --set model.dtype=bfloat16
	--set optim.max_steps=8 --set checkpoint.every=4)
fails=0
step train_bf16_cuda 240 mhpo-bench train "${TINY[@]}" --out "$OUT/bf16" || fails=$((fails + 1))
if "$PY" -c 'import vllm' 2>/dev/null; then
	step train_vllm_colocate 240 mhpo-bench train "${TINY[@]}" --out "$OUT/vllm" --set vllm.enabled=true \
		--set vllm.mode=colocate --set vllm.gpu_memory_utilization=0.3 --set vllm.enable_sleep_mode=false ||
		fails=$((fails + 1))
	if [[ -d "$OUT/bf16/final" ]]; then
		EVAL=(--model "$OUT/bf16/final" --benchmarks synth_arith --limit 32 --k 4 --max-tokens 12 --temperature 1.0)
		step evaluate_hf 120 mhpo-bench evaluate "${EVAL[@]}" --backend hf --out "$OUT/eval-hf" || fails=$((fails + 1))
		step evaluate_vllm 180 mhpo-bench evaluate "${EVAL[@]}" --backend vllm --out "$OUT/eval-vllm" ||
			fails=$((fails + 1))
	else
		skip evaluate_vllm "no final/ from train_bf16_cuda"
	fi
else
	skip train_vllm_colocate "vllm not installed"
	skip evaluate_vllm "vllm not installed"
fi

"$PY" - "$RESULTS" "$OUT" "$GPU" "$((SECONDS - T0))" <<'EOF'
"""Write the smoke results into perf/README.md between the gpu-smoke markers (atomically)."""
import datetime, json, pathlib, platform, sys

from mhpo.common import io

results, out, gpu, wall = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3], sys.argv[4]
rows = [line.rstrip("\n").split("\t") for line in open(results, encoding="utf-8") if line.strip()]
lines = [f"Measured {datetime.date.today()} on {gpu or 'a CUDA GPU'} ({platform.node()}), `perf/gpu_smoke.sh`, "
         f"{wall} s wall in all (budget 600 s).", "", "| step | outcome | seconds |", "|---|---|---|"]
for name, status, secs, log in rows:
    lines.append(f"| {name} | {status} | {secs} |")
for name, status, secs, log in rows:
    if status.startswith("FAILED") and log != "-":
        tail = pathlib.Path(log).read_text(errors="replace").splitlines()[-8:]
        lines += ["", f"`{name}` log tail:", "", "```", *tail, "```"]
for name in ("eval-hf", "eval-vllm"):
    summaries = sorted((out / name).glob("**/summary*.json"))
    if summaries:
        s = json.loads(summaries[0].read_text())
        lines.append(f"\n`{name}`: {json.dumps({k: s[k] for k in list(s)[:6]}, default=str)[:300]}")
start, end = "<!-- gpu-smoke:start -->", "<!-- gpu-smoke:end -->"
readme = pathlib.Path("perf/README.md")
text = readme.read_text(encoding="utf-8")
block = f"{start}\n" + "\n".join(lines) + f"\n{end}"
if start in text and end in text:
    text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
else:
    text += f"\n## GPU smoke (perf/gpu_smoke.sh)\n\n{block}\n"
io.write_text(readme, text)
print(f"gpu_smoke: results written into {readme}")
EOF
[[ $fails -eq 0 ]]
