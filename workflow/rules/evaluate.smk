# Evaluate one (model, objective label, seed, checkpoint): the final policy, intermediate checkpoints
# (evaluation.eval_every) and the untrained model (label "base"). Records and summaries follow
# docs/interfaces.md; `.done` marks the directory complete for Snakemake.


rule evaluate:
    input:
        lambda wc: PLAN.eval_job(wc.model, wc.objective, wc.seed, wc.checkpoint).inputs,
    output:
        touch(f"{_esc(EVALS)}/{{model}}/{{objective}}/seed{{seed}}/{{checkpoint}}/.done"),
    log:
        f"{_esc(LOGS)}/evaluate/{{model}}/{{objective}}/seed{{seed}}/{{checkpoint}}.log",
    params:
        cmd=lambda wc: PLAN.eval_command(wc.model, wc.objective, wc.seed, wc.checkpoint),
        code=lambda wc: PLAN.eval_code(wc.model),  # evaluation code hash (mhpo.codehash): a change reruns it
    threads: res("evaluate", "threads")
    resources:
        mem_mb=res("evaluate", "mem_mb"),
        runtime=res("evaluate", "runtime"),
        gpu=res("evaluate", "gpu"),
        nodes=1,
        cpus_per_task=res("evaluate", "threads"),
    conda:
        "../../envs/evaluate.yaml"
    shell:
        "export OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} TOKENIZERS_PARALLELISM=false; ({params.cmd}) > {log:q} 2>&1"
