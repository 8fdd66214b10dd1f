# Shared paths, wildcard constraints, the resources helper and the target lists. PLAN (mhpo.workflow.plan.Plan) is built
# in the Snakefile; every command line comes from mhpo.workflow.commands, every resource from PLAN.rule_resources.

from mhpo.workflow import commands as mcmd

RD = PLAN.results_dir
RUNS = PLAN.runs_dir
EVALS = PLAN.evals_dir
LOGS = PLAN.logs_dir
MODELS = PLAN.models_dir


def _esc(path):
    """A literal path inside a Snakemake pattern (results_dir may contain braces)."""
    return path.replace("{", "{{").replace("}", "}}")


wildcard_constraints:
    model=r"[^/]+",
    label=r"[^/]+",
    seed=r"\d+",
    checkpoint=r"[^/]+",


# No env prefix in the rules' shell commands: Snakemake exports OMP_NUM_THREADS, MKL_NUM_THREADS (and the other
# BLAS thread counts) from `threads` itself (snakemake/shell.py), and mhpo.common.env.setup (the Snakefile, every
# mhpo-bench command) sets TOKENIZERS_PARALLELISM=false.
def threads_of(family):
    return PLAN.resources[family]["threads"]


def resources_of(family):
    return PLAN.rule_resources(family)


def final_dirs():
    """The main experiments' text runs (VL runs feed tables/vl.*: workflow/rules/vl.smk)."""
    return [f"{r.path}/final" for r in PLAN.train_runs("text")]


def eval_done_files():
    return [PLAN.eval_done(j) for j in PLAN.eval_jobs("text")]


# --- used by aggregate.smk
TABLES = ["main", "training_signals"]
REPORT_ITEM = report  # alias: a line starting with `report` is parsed as the report directive
TABLE_EXTS = ["md", "csv", "tex"]


def figure_stems():
    return [f"training_{m}" for m, e in PLAN.models.items() if e["track"] == "text"]


def aggregate_outputs():
    tables = [f"{RD}/tables/{t}.{x}" for t in TABLES for x in TABLE_EXTS]
    figures = [f"{RD}/figures/{s}.{x}" for s in figure_stems() for x in ("png", "pdf")]
    return tables + figures


def atlas_outputs():
    """Only with training: a config that only evaluates existing runs (Flow 2) runs evaluation and aggregation."""
    if not PLAN.cfg["report"]["atlas"] or not PLAN.train_runs():
        return []
    return [f"{RD}/figures/gradient_atlas.{x}" for x in ("png", "pdf")]


def _report_tables(name, caption):
    return [
        REPORT_ITEM(
            _esc(f"{RD}/tables/{name}.{x}"),
            caption=f"../report/{caption}",
            category="Tables",
            subcategory=name,
            labels={"table": name, "format": x},
        )
        for x in TABLE_EXTS
    ]


def atlas_sources():
    """The objective files: a new objective (mhpo-bench new-objective) redraws the atlas."""
    import baselines, mhpo

    return sorted(__import__("glob").glob(f"{baselines.__path__[0]}/[!_]*.py")) + [f"{mhpo.__path__[0]}/mhpo.py"]


# --- used by stability.smk: the study named `stability` in the config's `studies` (workflow/config/default.yaml)
STUDY = PLAN.studies.get("stability")
STABILITY_FIGURES = ["reward", "grad_norm", "ratio", "entropy", "frontier"]


def stability_inputs():
    return [f"{r.path}/final" for r in STUDY.train_runs()] + [STUDY.eval_done(j) for j in STUDY.evals.values()]


def stability_outputs():
    tables = [f"{RD}/tables/stability{s}.{x}" for s in ("", "_paired") for x in TABLE_EXTS]
    figures = [f"{RD}/figures/stability_{n}.{x}" for n in STABILITY_FIGURES for x in ("png", "pdf")]
    frontier = [f"{RD}/tables/stability_frontier.{x}" for x in ("md", "csv")]
    return tables + frontier + [f"{RD}/tables/stability_runs.csv", f"{RD}/stability_summary.md"] + figures


# --- used by vl.smk: VL experiments (model track "vl") of the main config and of its studies
VL_PLANS = ([PLAN] if PLAN.vl_models() else []) + [p for p in PLAN.studies.values() if p.vl_models()]


def vl_inputs():
    out = []
    for p in VL_PLANS:
        out += [f"{r.path}/final" for r in p.train_runs("vl")] + [p.eval_done(j) for j in p.eval_jobs("vl")]
    return out


def vl_outputs():
    return [f"{RD}/tables/vl.{x}" for x in TABLE_EXTS] if VL_PLANS else []


def vl_main_outputs():
    """Targets of the default target: only when the main experiments (not just a study) include VL models."""
    return vl_outputs() if PLAN.vl_models() else []


# --- used by smollm.smk: the SmolLM2-135M tier, the study named `smollm` (workflow/config/smollm.yaml)
SMOLLM = PLAN.studies.get("smollm")
SMOLLM_DIR = f"{RD}/smollm"


def smollm_inputs():
    return [f"{r.path}/final" for r in SMOLLM.train_runs("text")] + [SMOLLM.eval_done(j) for j in SMOLLM.eval_jobs("text")]


def smollm_outputs():
    tables = [f"{SMOLLM_DIR}/tables/{t}.{x}" for t in TABLES for x in TABLE_EXTS]
    return tables + [f"{SMOLLM_DIR}/figures/training_{m}.{x}" for m in SMOLLM.models for x in ("png", "pdf")]
