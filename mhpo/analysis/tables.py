"""One table writer: Markdown, CSV and LaTeX text of a table, and the atomic write of its three files.

Every table of the suite (``mhpo.analysis.aggregate``: ``main.*``, ``training_signals.*``;
``mhpo.analysis.aggregate_vl``: ``vl.*``; ``mhpo.analysis.stability``: ``stability*.*``) is written with these
functions, so a cell is escaped the same way everywhere:

* Markdown: ``|`` inside a cell becomes ``\\|`` (it would split the cell);
* LaTeX: the characters special in text mode (``& % $ # _ { } ~ ^ \\``) are escaped, ``|`` becomes ``$|$``
  (in the default OT1 encoding a text-mode ``|`` prints as a dash), ``–`` becomes ``--`` and ``±`` ``$\\pm$``;
* CSV: ``None`` becomes an empty cell, a float its ``repr`` (shortest round-trip), NaN the ``nan`` string given.
"""

from __future__ import annotations

import csv
import io as _stdio
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mhpo.common import io

_TEX = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
        "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
        "|": "$|$", "–": "--", "±": r"$\pm$"}


def tex_escape(s) -> str:
    """``s`` as LaTeX text (see the module docstring); each character is mapped once, never re-escaped."""
    return "".join(_TEX.get(ch, ch) for ch in str(s))


def md_escape(s) -> str:
    return str(s).replace("|", "\\|")


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A pipe table: header, ``|---|`` rule, one line per row; every cell escaped."""
    lines = ["| " + " | ".join(md_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md_escape(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def tex_table(header: Sequence[str], rows: Sequence[Sequence[str]], caption: str, label_cols: int = 1,
              raw: bool = False) -> str:
    """A ``table``/``tabular`` (booktabs rules): ``label_cols`` left-aligned columns, the rest right-aligned.

    The header is always escaped; ``rows`` and ``caption`` too unless ``raw`` (the caller wrote LaTeX itself,
    e.g. ``$\\Delta$``, and escaped its plain parts with ``tex_escape``)."""
    esc = (lambda s: s) if raw else tex_escape  # noqa: E731
    cols = "l" * label_cols + "r" * (len(header) - label_cols)
    lines = ["\\begin{table}[t]", "\\centering", "\\small", f"\\begin{{tabular}}{{{cols}}}", "\\toprule",
             " & ".join(tex_escape(h) for h in header) + " \\\\", "\\midrule"]
    lines += [" & ".join(esc(c) for c in r) + " \\\\" for r in rows]
    lines += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{esc(caption)}}}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def _csv_value(v, nan: str):
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return nan if math.isnan(v) else repr(float(v))
    return v


def csv_text(header: Sequence[str], rows: Sequence[Sequence], nan: str = "") -> str:
    """CSV (``\\n`` line ends) of ``header`` and ``rows`` (values as in the module docstring)."""
    buf = _stdio.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow([_csv_value(v, nan) for v in r])
    return buf.getvalue()


def csv_records(records: Sequence[dict], nan: str = "nan") -> str:
    """CSV of dicts, columns in the first record's key order; empty text when there is no record."""
    if not records:
        return ""
    header = list(records[0])
    return csv_text(header, [[r.get(k) for k in header] for r in records], nan)


def write(stem: Path, md: str, csv: str, tex: str) -> list[Path]:
    """Write ``stem.md``, ``stem.csv`` and ``stem.tex`` atomically; returns their paths in that order."""
    paths = [stem.with_name(stem.name + ext) for ext in (".md", ".csv", ".tex")]
    for path, text in zip(paths, (md, csv, tex)):
        io.write_text(path, text)
    return paths
