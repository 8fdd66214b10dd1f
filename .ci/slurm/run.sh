#!/usr/bin/env bash
# .ci/slurm/run.sh -- a real, single-node Slurm cluster on localhost, and the
# project's workflow run through it.
#
#   .ci/slurm/run.sh            full CI step: cluster up, tests/test_slurm.py beside the
#                               project's workflow via `--profile slurm` (without pytest: a
#                               3-rule smoke workflow first), local run of the same config,
#                               table comparison, cluster down
#   .ci/slurm/run.sh --smoke    cluster up, 3-rule smoke workflow only, cluster down
#   .ci/slurm/run.sh --shell    cluster up, interactive shell inside it (sinfo, sbatch,
#                               snakemake --profile ...); exit the shell to tear it down
#   .ci/slurm/run.sh --exec CMD [ARGS...]
#                               cluster up, run CMD inside it (e.g. pytest tests/test_slurm.py)
#
# Needs root (apt, munged/slurmctld/slurmd, namespaces). Debian/Ubuntu: installs
# `slurm-wlm` and `munge` with apt if they are missing.
#
# Isolation: everything after the apt step runs inside private network, mount and
# PID (and UTS) namespaces (`unshare`). The network namespace only has `lo`, so the daemons
# cannot reach or be reached from any other address (and they are additionally
# configured to bind 127.0.0.1). The mount namespace puts the generated config at
# the default path /etc/slurm/slurm.conf (the plugin's job step drops SLURM_CONF and
# srun inside each job needs the default path) without touching the host's /etc.
# The PID namespace guarantees that every daemon dies with this script, even when
# it is killed with SIGKILL by `timeout -s KILL`; the normal path stops the
# daemons by PID from an EXIT trap. State, logs, munge key and socket live in a
# fresh temp dir (removed at exit unless SLURM_CI_KEEP=1), so reruns start clean.
#
# Knobs (environment): SLURM_CI_PARTITION (debug), SLURM_CI_ACCOUNT (ci),
# SLURM_CI_KEEP=1 (keep temp dir), SLURM_CI_WORKFLOW_TIMEOUT (s, default 600),
# SLURM_CI_OVERRIDES (args replacing the default --default-resources override),
# SLURM_CI_REQUIRE_WORKFLOW=1 (fail if the workflow/profile is missing),
# SLURM_CI_WORKFLOW_REPO (another git tree to run instead of this checkout),
# SLURM_CI_INIT_STATUS_DELAY (plugin's first status check, s; default: the
# slurm-ci profile's), SLURM_CI_LOCAL_TABLES (tables of a local run of the same
# config made elsewhere, e.g. by tests/test_workflow.py in .ci/run: skip the local run).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# The workflow under test (default: this checkout; another git tree for testing run.sh itself).
WF_REPO="$(cd "${SLURM_CI_WORKFLOW_REPO:-$REPO}" && pwd)"
MODE="${1:---all}"
[[ $# -gt 0 ]] && shift
case "$MODE" in --all | --smoke | --shell) ;; --exec) [[ $# -gt 0 ]] || MODE=bad ;; *) MODE=bad ;; esac
if [[ "$MODE" == bad ]]; then
	echo "usage: $0 [--all | --smoke | --shell | --exec CMD [ARGS...]]" >&2
	exit 2
fi

PARTITION="${SLURM_CI_PARTITION:-debug}"
ACCOUNT="${SLURM_CI_ACCOUNT:-ci}"
INIT_DELAY="${SLURM_CI_INIT_STATUS_DELAY:-}"
WF_TIMEOUT="${SLURM_CI_WORKFLOW_TIMEOUT:-600}"

log() { printf '[slurm-ci %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}
now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

# ----------------------------------------------------------------------------
# Outer part: install packages, then re-exec inside fresh namespaces.
# ----------------------------------------------------------------------------
if [[ -z "${_SLURM_CI_INNER:-}" ]]; then
	[[ "$(id -u)" == 0 ]] || die "must run as root (apt, munged, slurmctld, slurmd, unshare); try: sudo -E $0 $*"
	T0="$(now)"
	if command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
		command -v sbatch >/dev/null && command -v munged >/dev/null; then
		log "slurm-wlm and munge already installed ($(slurmctld -V 2>/dev/null || echo "?"))"
	else
		command -v apt-get >/dev/null || die "slurm/munge missing and no apt-get; install slurm-wlm + munge by hand"
		log "installing slurm-wlm and munge with apt"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		# policy-rc.d / no systemd in containers: the service start attempts are harmless no-ops.
		apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
		log "installed $(slurmctld -V) in $(secs "$T0") s"
	fi
	command -v unshare >/dev/null || die "unshare (util-linux) not found"
	export _SLURM_CI_INNER=1 _SLURM_CI_T0="$T0"
	# --kill-child: if this process dies, the namespace's init (the inner script)
	# gets SIGKILL, and with it every process in the PID namespace.
	exec unshare --net --uts --mount --pid --fork --mount-proc --kill-child -- bash "$HERE/run.sh" "$MODE" "$@"
fi

# ----------------------------------------------------------------------------
# Inner part (PID 1 of a private net+mount+pid namespace).
# ----------------------------------------------------------------------------
# Only `lo` exists here. glibc's getaddrinfo(AF_INET, AI_ADDRCONFIG), which Slurm
# uses, finds nothing while the namespace has no non-loopback IPv4 address, so give
# lo one from TEST-NET-1 (RFC 5737, documentation-only; nothing is routed out of
# this namespace anyway). The UTS namespace's hostname is "localhost" = NodeName.
ip link set lo up
ip addr add 192.0.2.1/32 dev lo
hostname localhost
# Remove temp dirs of earlier runs that were SIGKILLed (their EXIT trap never ran):
# a live run holds a lock on its dir's `lock` file.
for old in /tmp/mhpo-slurm-ci.*; do
	[[ -d "$old" && ! -L "$old" ]] || continue
	if [[ "${SLURM_CI_KEEP:-0}" != 1 ]] && flock -n "$old/lock" true 2>/dev/null; then rm -rf "$old"; fi
done
WORK="$(mktemp -d /tmp/mhpo-slurm-ci.XXXXXX)"
chmod 755 "$WORK" # munged wants its socket dir reachable by all
exec 9>"$WORK/lock"
flock -n 9
mkdir -p "$WORK"/{etc,state,spool,run,log,munge}
chmod 755 "$WORK/munge"
PIDS=()

cleanup() {
	local rc=$?
	set +e
	# Stop in reverse start order, by recorded PID: slurmd, slurmctld, munged.
	local i pid
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		pid="${PIDS[i]}"
		kill -TERM "$pid" 2>/dev/null || continue
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	[[ ${#PIDS[@]} -gt 0 ]] && log "daemons stopped (PIDs ${PIDS[*]})"
	if [[ $rc -ne 0 ]]; then
		for f in "$WORK"/log/*.log; do
			[[ -s "$f" ]] || continue
			echo "----- tail $f -----" >&2
			tail -n 30 "$f" >&2
		done
	fi
	if [[ "${SLURM_CI_KEEP:-0}" == 1 ]]; then
		log "kept $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

# --- config ------------------------------------------------------------------
CPUS="$(nproc)"
MEM_MB="$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')"
[[ -n "$MEM_MB" ]] || MEM_MB="$(free -m | awk '/^Mem:/{print $2}')"
MUNGE_SOCKET="$WORK/munge/munge.socket.2"
# Keep the distribution's other files in /etc/slurm (plugstack.conf ...); our
# directory then replaces /etc/slurm in this mount namespace only.
if [[ -d /etc/slurm ]]; then cp -a /etc/slurm/. "$WORK/etc/"; fi
sed -e "s|@DIR@|$WORK|g" -e "s|@CPUS@|$CPUS|g" -e "s|@MEM_MB@|$MEM_MB|g" \
	-e "s|@PARTITION@|$PARTITION|g" -e "s|@MUNGE_SOCKET@|$MUNGE_SOCKET|g" \
	-e "s|@CTLD_PORT@|6817|g" -e "s|@SLURMD_PORT@|6818|g" -e "s|@SRUN_PORTS@|60001-60200|g" \
	"$HERE/slurm.conf.in" >"$WORK/etc/slurm.conf"
if grep -q '@[A-Z_]*@' "$WORK/etc/slurm.conf"; then die "unfilled placeholder in slurm.conf"; fi
rm -f "$WORK/etc/cgroup.conf" # no cgroups
mkdir -p /etc/slurm
mount --bind "$WORK/etc" /etc/slurm
unset SLURM_CONF
export SLURM_CONF=/etc/slurm/slurm.conf

# --- munge -------------------------------------------------------------------
# A fresh key per run, owned by root (munged runs as root here, socket in $WORK).
if command -v mungekey >/dev/null; then
	mungekey --create --keyfile="$WORK/munge/munge.key" --bits=1024
else
	dd if=/dev/urandom of="$WORK/munge/munge.key" bs=1 count=1024 status=none
fi
chmod 400 "$WORK/munge/munge.key"
T1="$(now)"
munged --foreground --force --key-file="$WORK/munge/munge.key" --socket="$MUNGE_SOCKET" \
	--pid-file="$WORK/munge/munged.pid" --log-file="$WORK/log/munged.log" \
	--seed-file="$WORK/munge/munged.seed" >>"$WORK/log/munged.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [[ -S "$MUNGE_SOCKET" ]] && break; sleep 0.1; done
munge -n -S "$MUNGE_SOCKET" | unmunge -S "$MUNGE_SOCKET" >/dev/null || die "munge self-test failed"

# --- slurm daemons -----------------------------------------------------------
slurmctld -D -i -f "$SLURM_CONF" >>"$WORK/log/slurmctld.stdout" 2>&1 &
PIDS+=($!)
slurmd -D -N localhost -f "$SLURM_CONF" >>"$WORK/log/slurmd.stdout" 2>&1 &
PIDS+=($!)
state=""
for _ in $(seq 300); do
	state="$(sinfo -h -N -n localhost -o '%t' 2>/dev/null || true)"
	[[ "$state" == idle ]] && break
	for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null || die "daemon PID $p exited early"; done
	sleep 0.1
done
[[ "$state" == idle ]] || die "node not idle after 30 s (state '$state')"
log "cluster up in $(secs "$T1") s: $(sinfo -h -o '%P %a %D %t %c CPUs %m MB') (PIDs munged/slurmctld/slurmd: ${PIDS[*]})"
if command -v ss >/dev/null; then
	listen="$(ss -Htln | awk '{print $4}' | sort -u | tr '\n' ' ')"
	log "listening sockets: $listen"
	for a in $listen; do [[ "$a" == 127.0.0.1:* ]] || die "a daemon listens on $a, not 127.0.0.1"; done
fi

# Job-status polling for a cluster without slurmdbd (`sacct` cannot answer here):
# workflow/profiles/slurm-ci, layered after the real profile (later --profile wins).
CI_PROFILE="$REPO/workflow/profiles/slurm-ci"
SLURM_CLUSTER_OPTS=(--profile "$CI_PROFILE")
if [[ -n "${SLURM_CI_INIT_STATUS_DELAY:-}" ]]; then
	SLURM_CLUSTER_OPTS+=(--slurm-init-seconds-before-status-checks "$INIT_DELAY" --seconds-between-status-checks "$INIT_DELAY")
fi
export SLURM_CI_PARTITION="$PARTITION" SLURM_CI_ACCOUNT="$ACCOUNT"

# --- smoke: 3-rule workflow through sbatch -------------------------------------
smoke() {
	local d="$WORK/smoke" t
	mkdir -p "$d"
	cat >"$d/Snakefile" <<'EOF'
rule all:
    input: "c.txt"
rule a:
    output: "a.txt"
    shell: "echo \"a $SLURM_JOB_ID $(hostname)\" > {output}"
rule b:
    input: "a.txt"
    output: "b.txt"
    shell: "cat {input} > {output}; echo \"b $SLURM_JOB_ID\" >> {output}"
rule c:
    input: "b.txt"
    output: "c.txt"
    shell: "cat {input} > {output}; echo \"c $SLURM_JOB_ID\" >> {output}"
EOF
	t="$(now)"
	(cd "$d" && timeout -s KILL 90 snakemake --executor slurm --jobs 4 --workflow-profile none \
		--default-resources "slurm_partition=$PARTITION" "slurm_account=$ACCOUNT" \
		"${SLURM_CLUSTER_OPTS[@]}" --quiet rules >"$WORK/log/smoke.log" 2>&1) ||
		{ tail -n 40 "$WORK/log/smoke.log" >&2; die "smoke workflow failed"; }
	# Every rule must have run in its own Slurm job (a distinct SLURM_JOB_ID).
	local ids
	ids="$(awk '{print $2}' "$d/c.txt" | sort -u | grep -c '^[0-9][0-9]*$' || true)"
	[[ "$ids" == 3 ]] || { cat "$d/c.txt" >&2; die "smoke: expected 3 distinct Slurm job ids"; }
	log "smoke workflow: 3 rules in 3 Slurm jobs ($(tr '\n' ' ' <"$d/c.txt")) in $(secs "$t") s"
}

# --- the project's workflow: via Slurm and locally, then compare ---------------
find_profile() {
	local c
	for c in workflow/profiles/slurm profiles/slurm; do
		[[ -f "$WF_REPO/$c/config.yaml" || -f "$WF_REPO/$c/profile.yaml" ]] && { echo "$c"; return 0; }
	done
	return 1
}

# A scratch copy of the work tree (tracked + untracked-but-not-ignored files), so
# that each run writes its own results/ and .snakemake/ and the checkout stays as is.
scratch_copy() {
	local dst="$1"
	mkdir -p "$dst"
	if [[ "$(git -C "$WF_REPO" rev-parse --show-toplevel 2>/dev/null)" == "$WF_REPO" ]]; then
		(cd "$WF_REPO" && git ls-files -z --cached --others --exclude-standard |
			tar --null --no-recursion --ignore-failed-read -cf - -T -) | tar -xf - -C "$dst"
	else # not a git root (e.g. .ci/slurm/selftest): everything but outputs
		(cd "$WF_REPO" && tar --exclude=./results --exclude=./.snakemake -cf - .) | tar -xf - -C "$dst"
	fi
}

# The shipped site layer (workflow/profiles/site) filled in for this cluster: its partition and account, no GPU
# type (this node has none), and the cache paths: HF_HOME a fresh dir, the other caches as exported here.
site_layer() {
	local template="$1" dir="$2" hf="$3"
	mkdir -p "$dir" "$hf"
	sed -e "s|CHANGE_ME_partition|$PARTITION|" -e "s|CHANGE_ME_account|$ACCOUNT|" -e '/gpu_model:/d' \
		-e "s|^  - \"site=.*|  - \"site={hf_home: $hf, cache_dir: ${MHPO_CACHE_DIR}${MHPO_BENCHMARK_DIR:+, benchmark_dir: $MHPO_BENCHMARK_DIR}}\"|" \
		"$template" >"$dir/config.yaml"
	if grep -v '^ *#' "$dir/config.yaml" | grep -q CHANGE_ME; then die "site layer: unfilled CHANGE_ME in $dir/config.yaml"; fi
}
project_workflow() {
	local profile t rc=0
	local -a CI_CONFIG=()
	if ! profile="$(find_profile)" || ! [[ -f "$WF_REPO/workflow/Snakefile" || -f "$WF_REPO/Snakefile" ]]; then
		if [[ "${SLURM_CI_REQUIRE_WORKFLOW:-0}" == 1 ]]; then die "no Snakefile or slurm profile in $WF_REPO"; fi
		log "NOTE: no workflow/Snakefile + workflow/profiles/slurm in $WF_REPO yet: running the stand-in .ci/slurm/selftest instead"
		WF_REPO="$HERE/selftest"
		profile="$(find_profile)" || die "no profile in $WF_REPO"
	fi
	export MHPO_CACHE_DIR="${MHPO_CACHE_DIR:-$REPO/.cache}"
	# Snakemake imports mhpo/benchmarks from the scratch copy, whose ../shared/benchmarks is not the checkout's:
	# pin the benchmark data the installed package (and so tests/test_workflow.py's run) finds, so that
	# `if_available` benchmarks (MATH500 in the default) are planned alike in every run being compared.
	if [[ -z "${MHPO_BENCHMARK_DIR:-}" ]]; then
		local data_dir
		data_dir="$(cd / && python3 -c 'from benchmarks.catalog import data_dirs; print(*data_dirs()[:1])' 2>/dev/null || true)"
		if [[ -n "$data_dir" ]]; then
			export MHPO_BENCHMARK_DIR="$data_dir"
			log "benchmark data: $data_dir (the installed package's default)"
		fi
	fi
	# The default's jobs on the smoke overlay (one seed, 8 steps), as tests/test_workflow.py's end-to-end run
	if [[ -f "$WF_REPO/workflow/config/smoke.yaml" ]]; then
		CI_CONFIG=(--configfile workflow/config/default.yaml workflow/config/smoke.yaml)
	elif [[ -f "$WF_REPO/workflow/config/default.yaml" ]]; then
		CI_CONFIG=(--configfile workflow/config/default.yaml)
	fi
	scratch_copy "$WORK/wf-slurm" || die "scratch copy of $WF_REPO failed"
	scratch_copy "$WORK/wf-local" || die "scratch copy of $WF_REPO failed"
	# the default config's data_dir, ../shared/benchmarks, beside the copies as beside the checkout (the package
	# itself guesses no data location): the same data as tests/test_workflow.py's run
	if [[ -n "${MHPO_BENCHMARK_DIR:-}" && ! -e "$WORK/shared/benchmarks" ]]; then
		mkdir -p "$WORK/shared" && ln -s "$MHPO_BENCHMARK_DIR" "$WORK/shared/benchmarks"
	fi
	# The site-specific values the slurm profile leaves open come from the site layer a cluster fills in
	# (workflow/profiles/site): partition, account, time, GPU type (none on this node) and the cache paths.
	# SLURM_CI_OVERRIDES replaces it (whitespace-split).
	local -a overrides
	local site_hf=""
	if [[ -n "${SLURM_CI_OVERRIDES:-}" ]]; then
		read -r -a overrides <<<"$SLURM_CI_OVERRIDES"
	elif [[ -f "$WF_REPO/workflow/profiles/site/config.yaml" ]]; then
		site_hf="$WORK/site-hf"
		site_layer "$WF_REPO/workflow/profiles/site/config.yaml" "$WORK/site" "$site_hf"
		# keep the logs of successful jobs too (the plugin deletes them): they are checked below
		overrides=(--profile "$WORK/site" --slurm-keep-successful-logs)
	else
		overrides=(--default-resources "slurm_partition=$PARTITION" "slurm_account=$ACCOUNT" "gpu=0")
	fi

	t="$(now)"
	log "workflow via Slurm: snakemake --cores all --profile $profile ${overrides[*]} ${SLURM_CLUSTER_OPTS[*]} ${CI_CONFIG[*]}"
	# The shipped profile selects the paper config; CI runs the tiny default on the smoke overlay through it.
	(cd "$WORK/wf-slurm" && timeout -s KILL "$WF_TIMEOUT" snakemake --cores all --profile "$profile" \
		"${overrides[@]}" "${SLURM_CLUSTER_OPTS[@]}" "${CI_CONFIG[@]}" >"$WORK/log/wf-slurm.log" 2>&1) || rc=$?
	if [[ $rc -ne 0 ]]; then
		tail -n 60 "$WORK/log/wf-slurm.log" >&2
		die "workflow via Slurm failed (rc=$rc)"
	fi
	local njobs=0 nsub id
	nsub="$(grep -c 'has been submitted with SLURM jobid' "$WORK/log/wf-slurm.log" || true)"
	# Every submitted job id must have been started by slurmctld: by the main scheduler ("sched: Allocate
	# JobId=N") or by the backfill scheduler ("sched/backfill: ... Started JobId=N").
	for id in $(sed -n 's/.*has been submitted with SLURM jobid \([0-9]*\).*/\1/p' "$WORK/log/wf-slurm.log"); do
		grep -Eq "(Allocate|Started) JobId=$id( |$)" "$WORK/log/slurmctld.log" && njobs=$((njobs + 1))
	done
	log "workflow via Slurm done in $(secs "$t") s: $nsub jobs submitted with sbatch, $njobs allocated by slurmctld"
	[[ "$njobs" -gt 0 && "$njobs" == "$nsub" ]] || die "expected every submitted job to be allocated by slurmctld"
	if [[ -n "$site_hf" ]]; then
		# Every job ran with the site layer's caches: each Slurm job log names the caches it used (Snakefile).
		local nlogs nsite
		nlogs="$(find "$WORK/wf-slurm/.snakemake/slurm_logs" -name '*.log' | wc -l)"
		nsite="$(grep -rl "HF_HOME=$site_hf " "$WORK/wf-slurm/.snakemake/slurm_logs" | wc -l)"
		log "site layer: $nsite of $nlogs Slurm job logs show HF_HOME=$site_hf"
		[[ "$nlogs" -gt 0 && "$nsite" == "$nlogs" ]] || die "the site layer's HF_HOME did not reach every job"
	fi

	local local_tables="$WORK/wf-local/results/tables"
	if [[ -n "${SLURM_CI_LOCAL_TABLES:-}" ]]; then
		# .ci/run: the local run of the same config is tests/test_workflow.py's end-to-end run, just done.
		[[ -d "$SLURM_CI_LOCAL_TABLES" ]] || die "SLURM_CI_LOCAL_TABLES=$SLURM_CI_LOCAL_TABLES is not a directory"
		local_tables="$SLURM_CI_LOCAL_TABLES"
		log "local run of the same config: reusing $local_tables"
	else
		t="$(now)"
		log "same workflow locally: snakemake --cores all ${CI_CONFIG[*]}"
		(cd "$WORK/wf-local" && timeout -s KILL "$WF_TIMEOUT" snakemake --cores all "${CI_CONFIG[@]}" \
			>"$WORK/log/wf-local.log" 2>&1) || rc=$?
		if [[ $rc -ne 0 ]]; then
			tail -n 60 "$WORK/log/wf-local.log" >&2
			die "local workflow failed (rc=$rc)"
		fi
		log "local workflow done in $(secs "$t") s"
	fi

	python3 "$HERE/compare_tables.py" "$local_tables" "$WORK/wf-slurm/results/tables" >&2 ||
		die "Slurm and local runs produced different tables"
}

run_pytest() {
	if python3 -c 'import pytest' 2>/dev/null; then
		local t
		t="$(now)"
		# both tests at once (-n 2 --dist load): their jobs are trivial, their time is Slurm's scheduling and polling
		(cd "$REPO" && timeout -s KILL 300 python3 -m pytest -q -n 2 --dist load -p no:cacheprovider tests/test_slurm.py -rs) >&2 ||
			die "tests/test_slurm.py failed"
		log "tests/test_slurm.py in $(secs "$t") s"
	elif [[ -n "${MHPO_REQUIRE:-}" ]]; then
		die "tests/test_slurm.py cannot run: pytest not installed (MHPO_REQUIRE=$MHPO_REQUIRE forbids the skip)"
	else
		log "SKIP tests/test_slurm.py: pytest not installed"
	fi
}

case "$MODE" in
--smoke) smoke ;;
--shell)
	log "interactive shell inside the cluster namespace; exit it to stop the cluster"
	log "snakemake here needs: ${SLURM_CLUSTER_OPTS[*]}"
	cd "$REPO"
	PS1='(slurm-ci) \w \$ ' bash --norc -i || true
	;;
--exec)
	cd "$REPO"
	"$@"
	;;
--all)
	if python3 -c 'import pytest' 2>/dev/null; then
		# tests/test_slurm.py beside the workflow: one after the other they kept 0.85 of the 2 cores busy
		run_pytest &
		tests_pid=$!
		project_workflow
		wait "$tests_pid" || die "tests/test_slurm.py failed"
	else
		smoke
		project_workflow
	fi
	;;
esac
log "done in $(secs "${_SLURM_CI_T0}") s"
