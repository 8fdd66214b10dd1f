# The stability study (docs/stability.md): per-run stability statistics, mean ± CI over seeds per
# method × regime, paired comparisons against reference methods, summary text and seed-band figures.
#
#   snakemake --cores all stability
#
# The study's experiments come from the config's `studies: {stability: workflow/config/stability.yaml}`
# (mhpo.workflow.config plans them as PLAN.studies["stability"]); the default target never runs them. Regimes are the
# study's model labels (u{U}-lr{lr}: updates per rollout x lr) and methods its objective labels; only those are analysed,
# so other runs under the same results_dir (e.g. the default workflow's) never leak in. The main workflow's
# per-run summary is tables/training_signals.*; tables/stability.* is this study's.

if STUDY is not None:

    rule stability:
        input:
            stability_inputs(),
        output:
            [_esc(p) for p in stability_outputs()],
        log:
            f"{_esc(LOGS)}/stability.log",
        params:
            cmd=mcmd.stability(PLAN, STUDY),
        threads: threads_of("aggregate")
        resources:
            **resources_of("aggregate"),
        conda:
            "../../envs/aggregate.yaml"
        shell:
            "({params.cmd}) > {log:q} 2>&1"
