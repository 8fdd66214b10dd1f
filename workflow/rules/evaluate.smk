# Evaluate one (model, label, seed, checkpoint): the final policy, intermediate checkpoints
# (evaluation.eval_every) and the untrained model (label "base"). Records and summaries follow
# docs/interfaces.md; `.done` marks the directory complete for Snakemake.


rule evaluate:
    input:
        lambda wc: PLAN.eval_job(wc.model, wc.label, wc.seed, wc.checkpoint).inputs,
    output:
        touch(f"{_esc(EVALS)}/{{model}}/{{label}}/seed{{seed}}/{{checkpoint}}/.done"),
    log:
        f"{_esc(LOGS)}/evaluate/{{model}}/{{label}}/seed{{seed}}/{{checkpoint}}.log",
    params:
        cmd=lambda wc: PLAN.eval_command(wc.model, wc.label, wc.seed, wc.checkpoint),
        code=lambda wc: PLAN.eval_code(wc.model),  # evaluation code hash (mhpo.common.codehash): a change reruns it
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    conda:
        "../../envs/evaluate.yaml"
    shell:
        "({params.cmd}) > {log:q} 2>&1"
