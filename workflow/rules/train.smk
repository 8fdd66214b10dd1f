# Build the tiny base model (tiny configs only) and train one (model, objective label, seed) per job.


rule tiny_model:
    output:
        directory(f"{_esc(MODELS)}/{{model}}"),
    log:
        f"{_esc(LOGS)}/tiny_model/{{model}}.log",
    params:
        cmd=lambda wc, output: PLAN.tiny_command(wc.model, output[0]),
    threads: res("tiny_model", "threads")
    resources:
        mem_mb=res("tiny_model", "mem_mb"),
        runtime=res("tiny_model", "runtime"),
        gpu=res("tiny_model", "gpu"),
    conda:
        "../../envs/train.yaml"
    shell:
        "export OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} TOKENIZERS_PARALLELISM=false; ({params.cmd}) > {log:q} 2>&1"


rule train:
    input:
        lambda wc: PLAN.train_inputs(wc.model, wc.objective, wc.seed),
    output:
        directory(f"{_esc(RUNS)}/{{model}}/{{objective}}/seed{{seed}}/final"),
    log:
        f"{_esc(LOGS)}/train/{{model}}/{{objective}}/seed{{seed}}.log",
    params:
        # processes follow the job's GPUs (--set-resources train:gpu=4 included), threads its CPUs: mhpo.launch
        cmd=lambda wc, output, threads, resources: PLAN.train_command(
            wc.model, wc.objective, wc.seed, output[0], gpus=resources.gpu, threads=threads
        ),
        # content hash of the objective's and trainer's code, the resolved recipe and the package version:
        # a change reruns exactly this run (Snakemake's params rerun trigger; mhpo.codehash)
        code=lambda wc: PLAN.train_code(wc.model, wc.objective, wc.seed),
    threads: res("train", "threads")
    resources:
        mem_mb=res("train", "mem_mb"),
        runtime=res("train", "runtime"),
        gpu=res("train", "gpu"),
        # one node for all the job's GPUs (the Slurm plugin's --gpus=N is a job total), and the CPUs asked of
        # Slurm from the config, not from `threads`, which Snakemake caps by the submitting host's --cores
        nodes=1,
        cpus_per_task=res("train", "threads"),
    conda:
        "../../envs/train.yaml"
    shell:
        "export OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} TOKENIZERS_PARALLELISM=false; ({params.cmd}) > {log:q} 2>&1"
