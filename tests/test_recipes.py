"""Recipes: every shipped recipe validates and builds its full GRPOConfig via ``--dry-run`` (no weights, no data);
bad recipes and arguments fail with a message that names the problem."""

from __future__ import annotations

import json

import pytest
import yaml

from mhpo import cli
from mhpo.training import recipe

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def dry(capsys, config, *extra, objective="mhpo"):
    rc = cli.main(["train", "--config", config, "--objective", objective, "--seed", "0",
                   "--out", "/nonexistent/{seed}", "--dry-run", *extra])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.mark.parametrize("name", recipe.shipped())
def test_shipped_recipes_dry_run(capsys, tmp_path, name):
    """The GRPOConfig TRL resolves from each recipe, against the recipe file read here: one rollout of
    P prompts × G completions is split into U optimizer steps of micro-batches of m (one process)."""
    raw = yaml.safe_load(recipe.path_for(name).read_text())
    ro, optim = raw["rollout"], raw["optim"]
    P, G, U, m = ro["prompts_per_rollout"], ro["group_size"], ro["updates_per_rollout"], ro["micro_batch_size"]
    rc = cli.main(["train", "--config", name, "--objective", "mhpo", "--seed", "0", "--out", str(tmp_path / "{seed}"),
                   "--dry-run"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    cfg = json.loads(out[out.index("{"):])["grpo_config"]
    assert cfg["num_generations"] == G and cfg["per_device_train_batch_size"] == m
    assert cfg["generation_batch_size"] == P * G  # TRL's own derivation: per_device × processes × steps_per_generation
    assert cfg["gradient_accumulation_steps"] * m == P * G // U  # one optimizer step consumes a U-th of the rollout
    assert cfg["steps_per_generation"] == U * cfg["gradient_accumulation_steps"] and cfg["num_iterations"] == 1
    assert (cfg["max_completion_length"], cfg["temperature"], cfg["top_p"]) == (
        ro["max_completion_length"], ro["temperature"], ro["top_p"])
    assert cfg["learning_rate"] == float(optim["lr"]) and cfg["beta"] == 0.0
    assert U >= 2  # every shipped config is off-policy
    assert cfg["vllm_importance_sampling_correction"] is True  # explicit and the same for every method
    assert list(tmp_path.iterdir()) == []  # a dry run writes nothing


def test_paper_recipes_state_their_response_lengths_and_mark_guesses():
    for name, length in (("qwen2.5-7b-instruct", 2048), ("qwen3-4b-base", 4096)):
        assert recipe.load(name)["rollout"]["max_completion_length"] == length
        text = recipe.path_for(name).read_text()
        for key in ("lr:", "group_size:", "hf_dataset:", "temperature:", "updates_per_rollout:"):
            line = next(ln for ln in text.splitlines() if ln.strip().startswith(key))
            assert "not stated by the paper" in line, line


@pytest.mark.parametrize("overrides, message", [
    ({"rollout.grup_size": 8}, "unknown key 'rollout.grup_size'; did you mean 'group_size'"),
    ({"optimizer": {}}, "unknown key 'optimizer'; did you mean 'optim'"),
    ({"rollout.group_size": "eight"}, "'rollout.group_size' must be int"),
    ({"rollout.group_size": 1}, "'rollout.group_size' must be >= 2"),
    ({"advantage.mode": "zscore"}, "'advantage.mode' must be one of group, mean_only, batch"),
    ({"rollout.updates_per_rollout": 3, "checkpoint.every": 9},
     "must be divisible by rollout.updates_per_rollout = 3"),
    ({"checkpoint.every": 5}, "'checkpoint.every' must be a multiple of rollout.updates_per_rollout (2)"),
    ({"data.hf_dataset": "x/y"}, "exactly one of them"),
    ({"dapo.overlong_shaping": True, "dapo.overlong_cache": 0}, "'dapo.overlong_cache' must be in (0,"),
    ({"seeds": []}, "'seeds' must be a non-empty list"),
])
def test_bad_recipe_values_name_the_key(overrides, message):
    with pytest.raises(recipe.RecipeError) as e:
        recipe.load("tiny", overrides=overrides)
    assert message in str(e.value)


def test_recipe_is_a_typed_dataclass_with_a_default_and_help_for_every_field():
    """The recipe schema is the Recipe dataclass tree (as TRL's GRPOConfig): every field has a default and help."""
    import dataclasses

    sections = [recipe.Recipe] + [f.default_factory for f in dataclasses.fields(recipe.Recipe)
                                  if dataclasses.is_dataclass(f.default_factory)]
    assert len(sections) == 11  # Recipe and its ten sections
    for cls in sections:
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"
            assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING, f.name
    assert set(recipe.SCHEMA) == {f.name for f in dataclasses.fields(recipe.Recipe)}  # derived, not hand-written


def test_cross_field_checks_run_in_post_init():
    ok = recipe.Recipe(name="x", model=recipe.ModelArgs(path="tiny"), data=recipe.DataArgs(task="add"))
    assert ok.to_dict() == recipe.resolve({"name": "x", "model": {"path": "tiny"}, "data": {"task": "add"}})
    with pytest.raises(recipe.RecipeError, match="'rollout.group_size' must be >= 2"):
        recipe.Recipe(name="x", data=recipe.DataArgs(task="add"), rollout=recipe.RolloutArgs(group_size=1))
    with pytest.raises(recipe.RecipeError, match="exactly one of them"):
        recipe.Recipe(name="x", data=recipe.DataArgs(task="add", hf_dataset="a/b"))


def test_validate_config_checks_a_recipes_objective_params(tmp_path, capsys):
    p = tmp_path / "r.yaml"
    p.write_text(recipe.path_for("tiny").read_text()
                 .replace("objective_params: {}", "objective_params: {mhpo: {c: abc}}"))
    assert cli.main(["validate-config", str(p)]) == 2
    assert "objective_params.mhpo: mhpo: parameter 'c' must be float" in capsys.readouterr().err


def test_bad_yaml_file(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("name: x\nmodel: {path: tiny}\ndata: {task: arith}\nrollout:\n  group_sise: 4\n")
    with pytest.raises(recipe.RecipeError, match="unknown key 'rollout.group_sise'; did you mean 'group_size'"):
        recipe.load(p)
    with pytest.raises(recipe.RecipeError, match="no recipe named 'tinyy'"):
        recipe.load("tinyy")


@pytest.mark.parametrize("extra, message", [
    (["--param", "cc=2"], "objective 'mhpo' has no parameter 'cc'"),
    (["--set", "optim.lrr=1"], "unknown key 'optim.lrr'"),
    (["--set", "optim.lr"], "--set 'optim.lr' must look like KEY=VALUE"),
    (["--seed", "0,1"], "must contain '{seed}'"),
])
def test_bad_arguments_exit_2_with_a_clear_message(capsys, extra, message):
    out = "/nonexistent/run" if "--seed" in extra else "/nonexistent/{seed}"
    args = ["train", "--config", "tiny", "--objective", "mhpo", "--out", out, "--dry-run", *extra]
    if "--seed" not in extra:
        args += ["--seed", "0"]
    assert cli.main(args) == 2
    assert message in capsys.readouterr().err


def test_unknown_objective(capsys):
    rc, _, err = dry(capsys, "tiny", objective="nope")
    assert rc == 2 and "unknown objective 'nope'" in err


def test_objective_params_from_recipe_and_command_line(capsys, tmp_path):
    p = tmp_path / "r.yaml"
    text = (recipe.path_for("tiny").read_text()
            .replace("objective_params: {}", "objective_params: {mhpo: {c: 2.0, k_pos: 2.0}}"))
    p.write_text(text)
    rc, out, _ = dry(capsys, str(p), "--param", "c=3.0")
    params = json.loads(out[out.index("{"):])["objective_params"]
    assert rc == 0 and params["c"] == 3.0 and params["k_pos"] == 2.0
