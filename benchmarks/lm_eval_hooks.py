"""Functions the generated lm-eval tasks call (through the ``mhpo_hooks.py`` shim written next to the
YAMLs), so lm-eval uses exactly our prompt template, gold rule and scorer."""

from __future__ import annotations

from benchmarks import catalog, scoring


def _spec(name: str) -> tuple[dict, str]:
    bench = catalog.get(name)
    if bench.task is not None:  # synthetic tasks are exported as {id, problem, answer} rows
        return {"id": "id", "problem": "problem", "gold": "answer"}, "field"
    return bench.fields, bench.gold_rule


def doc_to_text(name: str, doc: dict) -> str:
    fields, _ = _spec(name)
    return catalog.get(name).format_prompt(str(doc[fields["problem"]]))


def doc_to_target(name: str, doc: dict) -> str:
    fields, rule = _spec(name)
    return catalog.gold_of(doc[fields["gold"]], rule, where=f"{name} document")


def process_results(name: str, doc: dict, results: list[str]) -> dict:
    """lm-eval's per-document metric: ``acc`` of the (first) completion under the pinned scorer."""
    return {"acc": float(scoring.is_correct(results[0], doc_to_target(name, doc)))}
