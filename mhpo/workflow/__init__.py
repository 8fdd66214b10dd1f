"""Workflow planning: the config, the plan of jobs, their commands and cost, code hashes of jobs, prefetching and the
objective scaffold."""
