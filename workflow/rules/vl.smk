# The vision-language track (docs/vl.md): tables/vl.{md,csv,tex} from the VL experiments' evaluations.
#
#   snakemake --cores all vl_tiny     # the default config's tiny VL study (workflow/config/vl_tiny.yaml)
#   snakemake --cores all vl          # every VL experiment of the config (paper.yaml: Qwen2.5-VL-7B, also in `all`)
#
# VL experiments are those whose recipe sets data.image_field (mhpo.workflow.config: model track "vl"); they use the same
# tiny_model / train / evaluate rules and the same commands as the text track (`mhpo-bench tiny-model --kind vl`,
# `mhpo-bench evaluate`, `mhpo-bench aggregate --track vl`). They come from the main experiments (paper.yaml) or
# from a study (default.yaml's `studies: {vl_tiny: ...}`, run only by its target). The main `aggregate` rule never
# waits for them.

if VL_PLANS:

    rule aggregate_vl:
        input:
            vl_inputs(),
        output:
            _report_tables("vl", "vl_table.rst"),
        log:
            f"{_esc(LOGS)}/aggregate_vl.log",
        params:
            cmd=mcmd.aggregate_vl(PLAN, VL_PLANS),
            code=PLAN.aggregate_code(vl=True),
        threads: threads_of("aggregate")
        resources:
            **resources_of("aggregate"),
        conda:
            "../../envs/aggregate.yaml"
        shell:
            "({params.cmd}) > {log:q} 2>&1"

    rule vl:
        input:
            vl_outputs(),


if "vl_tiny" in PLAN.studies:

    rule vl_tiny:
        input:
            vl_outputs(),
