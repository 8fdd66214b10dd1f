# Shared paths, wildcard constraints and resource lookups. PLAN (mhpo.config.Plan) is built in the Snakefile.

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
    objective=r"[^/]+",
    seed=r"\d+",
    checkpoint=r"[^/]+",


def res(family, key):
    return PLAN.resources[family][key]


def final_dirs():
    return [f"{r.path}/final" for r in PLAN.train_runs()]


def eval_done_files():
    return [PLAN.eval_done(j) for j in PLAN.evals.values()]


def tiny_models():
    return [PLAN.tiny_model_dir(m) for m, e in PLAN.models.items() if e["tiny_model"]]


# --- used by aggregate.smk
TABLES = ["main", "stability"]
REPORT_ITEM = report  # alias: a line starting with `report` is parsed as the report directive
TABLE_EXTS = ["md", "csv", "tex"]


def figure_stems():
    return [f"training_{m}" for m in PLAN.models]


def aggregate_outputs():
    tables = [f"{RD}/tables/{t}.{x}" for t in TABLES for x in TABLE_EXTS]
    figures = [f"{RD}/figures/{s}.{x}" for s in figure_stems() for x in ("png", "pdf")]
    return tables + figures


def atlas_outputs():
    if not PLAN.cfg["report"]["atlas"]:
        return []
    return [f"{RD}/figures/gradient_atlas.{x}" for x in ("png", "pdf")]


def aggregate_command():
    import shlex

    argv = ["mhpo-bench", "aggregate", "--runs", RUNS]
    for d in PLAN.extra_runs_dirs():
        argv += ["--runs", d]
    argv += ["--evals", EVALS, "--out", RD]
    for e in PLAN.experiments():
        argv += ["--experiment", e]
    return shlex.join(argv)


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


# --- used by stability.smk
STABILITY_REFERENCES = ["grpo", "mhpo"]  # paired comparisons: every method vs GRPO, and vs MHPO (ablations)
STABILITY_FIGURES = ["reward", "grad_norm", "ratio", "entropy"]


def stability_outputs():
    tables = [f"{RD}/tables/stability_study{s}.{x}" for s in ("", "_paired") for x in ("md", "csv", "tex")]
    figures = [f"{RD}/figures/stability_study_{n}.{x}" for n in STABILITY_FIGURES for x in ("png", "pdf")]
    return tables + [f"{RD}/tables/stability_study_runs.csv", f"{RD}/stability_study_summary.md"] + figures


def stability_command():
    import shlex

    runs = PLAN.train_runs()
    labels = sorted({r.label for r in runs})
    refs = [m for m in STABILITY_REFERENCES if m in labels] or labels[:1]
    argv = ["python", "-m", "mhpo.stability", "--runs", RUNS, "--evals", EVALS, "--out", RD,
            "--regimes", ",".join(sorted({r.model for r in runs})), "--methods", ",".join(labels),
            "--reference", ",".join(refs)]
    return shlex.join(argv)
