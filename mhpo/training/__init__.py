"""Training: the recipe, data, rewards, the GRPO trainer with a pluggable objective, sampling, the run itself, its
manifest and the launcher."""
