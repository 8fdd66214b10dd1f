# Aggregate every planned evaluation and training run into tables and stability figures; draw the
# gradient-shape atlas. Outputs are report() items: `snakemake --report results/report.html`.

rule aggregate:
    input:
        evals=eval_done_files(),
        runs=final_dirs(),
    output:
        main=_report_tables("main", "main_table.rst"),
        training_signals=_report_tables("training_signals", "stability_table.rst"),
        figures=[
            REPORT_ITEM(
                _esc(f"{RD}/figures/{s}.{x}"),
                caption="../report/training_signals.rst",
                category="Figures",
                subcategory="training signals",
                labels={"model": s.removeprefix("training_"), "format": x},
            )
            for s in figure_stems()
            for x in ("png", "pdf")
        ],
    log:
        f"{_esc(LOGS)}/aggregate.log",
    params:
        cmd=mcmd.aggregate(PLAN),
        code=PLAN.aggregate_code(),  # aggregation code hash (mhpo.common.codehash): a change rebuilds the tables
    threads: threads_of("aggregate")
    resources:
        **resources_of("aggregate"),
    conda:
        "../../envs/aggregate.yaml"
    shell:
        "({params.cmd}) > {log:q} 2>&1"


rule atlas:
    input:
        atlas_sources(),
    output:
        [
            REPORT_ITEM(
                _esc(f"{RD}/figures/gradient_atlas.{x}"),
                caption="../report/gradient_atlas.rst",
                category="Figures",
                subcategory="gradient-shape atlas",
                labels={"figure": "gradient atlas", "format": x},
            )
            for x in ("png", "pdf")
        ],
    log:
        f"{_esc(LOGS)}/atlas.log",
    params:
        cmd=mcmd.atlas(PLAN, f"{RD}/figures"),
    threads: threads_of("aggregate")
    resources:
        **resources_of("aggregate"),
    conda:
        "../../envs/aggregate.yaml"
    shell:
        "({params.cmd}) > {log:q} 2>&1"
