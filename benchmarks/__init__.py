"""Evaluation: the benchmark registry, the pinned scorer, generation backends, metrics and lm-eval tasks.

``benchmarks.available()`` lists every benchmark name, text and vision-language; ``benchmarks.get(name)``
returns a :class:`Benchmark` (its ``modality`` is ``"text"`` or ``"vl"``) whose ``load()`` gives
``{id, problem, gold, prompt}`` rows (VL rows add ``image``, ``choices``, ``answer_type``). Scoring lives in
:mod:`benchmarks.scoring`.
"""

from benchmarks.catalog import Benchmark, BenchmarkError, available, get

__all__ = ["Benchmark", "BenchmarkError", "available", "get"]
