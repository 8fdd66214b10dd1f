"""Evaluation: the benchmark registry, the pinned scorer, generation backends, metrics and lm-eval tasks.

``benchmarks.available()`` lists benchmark names; ``benchmarks.get(name)`` returns a :class:`Benchmark`
whose ``load()`` gives ``{id, problem, gold, prompt}`` rows. Scoring lives in :mod:`benchmarks.scoring`.
"""

from benchmarks.catalog import Benchmark, BenchmarkError, available, get

__all__ = ["Benchmark", "BenchmarkError", "available", "get"]
