# The SmolLM2-135M tier (workflow/config/smollm.yaml; docs/models-and-tasks.md): a real pretrained model through
# the paper recipes' path on 2 CPU cores. Its runs and evaluations use the same train / evaluate rules; this rule
# tables them apart from the main experiments, in results/smollm/ (the main table's layout).
#
#   snakemake --cores all smollm

if SMOLLM is not None:

    rule aggregate_smollm:
        input:
            smollm_inputs(),
        output:
            [_esc(p) for p in smollm_outputs()],
        log:
            f"{_esc(LOGS)}/aggregate_smollm.log",
        params:
            cmd=mcmd.aggregate(SMOLLM, SMOLLM_DIR),
            code=PLAN.aggregate_code(),
        threads: threads_of("aggregate")
        resources:
            **resources_of("aggregate"),
        conda:
            "../../envs/aggregate.yaml"
        shell:
            "({params.cmd}) > {log:q} 2>&1"

    rule smollm:
        input:
            smollm_outputs(),
