# The stability study (issue 8, docs/stability.md): per-run stability statistics, mean ± CI over seeds per
# method × regime, paired comparisons against reference methods, summary text and seed-band figures.
#
#   snakemake --cores all stability --configfile workflow/config/stability.yaml
#
# Regimes are the config's model labels (tiny-standard, tiny-stressed) and methods its objective labels; only
# those are analysed, so other runs under the same results_dir (e.g. the default workflow's) never leak in.
# Outputs have their own names (stability_study*), distinct from the main workflow's tables/stability.*.

rule stability:
    input:
        runs=final_dirs(),
        evals=eval_done_files(),
    output:
        [_esc(p) for p in stability_outputs()],
    log:
        f"{_esc(LOGS)}/stability.log",
    params:
        cmd=stability_command(),
    threads: res("aggregate", "threads")
    resources:
        mem_mb=res("aggregate", "mem_mb"),
        runtime=res("aggregate", "runtime"),
        gpu=res("aggregate", "gpu"),
    conda:
        "../../envs/aggregate.yaml"
    shell:
        "export OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} TOKENIZERS_PARALLELISM=false; ({params.cmd}) > {log:q} 2>&1"
