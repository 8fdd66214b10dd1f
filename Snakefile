# mhpo-bench workflow: tiny model -> train -> evaluate -> aggregate (tables, figures, report).
#
#   snakemake --cores all                                   # embedded tiny default (workflow/config/default.yaml)
#   snakemake --profile slurm --profile workflow/profiles/mysite     # the paper matrix on Slurm (docs/workflow.md)
#   snakemake --report results/report.html                  # Snakemake's HTML report of tables and figures
#
# All logic lives in the mhpo package (mhpo.workflow.plan plans the jobs, mhpo.workflow.commands builds every command line;
# rules run them).
# See docs/workflow.md.

import sys
from pathlib import Path

from snakemake.utils import min_version, validate
from snakemake.exceptions import WorkflowError

min_version("9.0")


# The embedded default, unless config files are given with --configfile: Snakemake would otherwise merge
# them over it key by key (a paper config would inherit the tiny model and its defaults).
if not workflow.overwrite_configfiles:

    configfile: "workflow/config/default.yaml"



from mhpo.workflow import config as mcfg
from mhpo.common import env as menv
from mhpo import resources as mres

# the site layer's cache paths (config `site`), then the project's defaults for the rest: the planner and every
# job submitted from here (sbatch --export=ALL) read the same Hugging Face cache
try:
    mcfg.apply_site(config)
except mcfg.ConfigError as e:
    raise WorkflowError(f"invalid workflow config: {e}") from None
menv.setup()
print(menv.describe_caches(), file=sys.stderr)  # also in every cluster job's log: the caches the job used

# The config's name (its file's stem) names the default results_dir of a regeneration config (Flow 2).
_name = Path(workflow.overwrite_configfiles[-1]).stem if workflow.overwrite_configfiles else None
try:
    mcfg.prepare(config, _name)  # in place: YAML int checkpoint keys as strings, Flow 2's results_dir
    _cfg, PLAN = mcfg.load(config, name=_name)
except mcfg.ConfigError as e:
    raise WorkflowError(f"invalid workflow config: {e}") from None
validate(config, str(mres.schema_path()))  # the schema ships with the package (mhpo/resources/schemas)
if workflow.is_main_process and not workflow.dryrun:
    # each training job reads one resolved recipe, RUN_DIR/recipe.resolved.yaml (written where it changed)
    PLAN.write_resolved_recipes()
if workflow.is_main_process:  # not again inside every cluster job
    from mhpo.workflow import cost as mcost

    print(mcost.describe(mcost.matrix_cost(PLAN, mcost.cli_overrides(workflow))), file=sys.stderr)


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/stability.smk"
include: "workflow/rules/vl.smk"
include: "workflow/rules/smollm.smk"


report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        aggregate_outputs(),
        atlas_outputs(),
        vl_main_outputs(),
