# Build the tiny base model (tiny configs only) and train one (model, label, seed) per job. The label is the
# experiment's `label` (default: its objective).


rule tiny_model:
    output:
        directory(f"{_esc(MODELS)}/{{model}}"),
    log:
        f"{_esc(LOGS)}/tiny_model/{{model}}.log",
    params:
        cmd=lambda wc, output: PLAN.tiny_command(wc.model, output[0]),
    threads: threads_of("tiny_model")
    resources:
        **resources_of("tiny_model"),
    conda:
        "../../envs/train.yaml"
    shell:
        "({params.cmd}) > {log:q} 2>&1"


rule train:
    input:
        lambda wc: PLAN.train_inputs(wc.model, wc.label, wc.seed),
    output:
        directory(f"{_esc(RUNS)}/{{model}}/{{label}}/seed{{seed}}/final"),
    log:
        f"{_esc(LOGS)}/train/{{model}}/{{label}}/seed{{seed}}.log",
    params:
        # processes follow the job's GPUs (--set-resources train:gpu=4 included), threads its CPUs: mhpo.training.launch
        cmd=lambda wc, output, threads, resources: PLAN.train_command(
            wc.model, wc.label, wc.seed, output[0], gpus=resources.gpu, threads=threads
        ),
        # content hash of the objective's and trainer's code, the resolved recipe and the package version:
        # a change reruns exactly this run (Snakemake's params rerun trigger; mhpo.common.codehash)
        code=lambda wc: PLAN.train_code(wc.model, wc.label, wc.seed),
    threads: threads_of("train")
    resources:
        **resources_of("train"),
    conda:
        "../../envs/train.yaml"
    shell:
        "({params.cmd}) > {log:q} 2>&1"
