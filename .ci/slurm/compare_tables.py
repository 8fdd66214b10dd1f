#!/usr/bin/env python3
"""Compare the tables of two workflow runs (Slurm vs local) cell by cell.

    compare_tables.py LOCAL_TABLES_DIR SLURM_TABLES_DIR [--rtol 1e-6] [--atol 1e-9] [--ignore-col REGEX ...]

Both directories must hold the same set of table files (*.csv, *.tsv, *.md, *.json; compared
recursively). CSV/TSV: same header, same number of rows, non-numeric cells equal, numeric cells
equal within |a-b| <= atol + rtol*|b| (NaN == NaN). Other files: byte-equal after stripping
trailing whitespace. Columns matching --ignore-col (wall-clock timings, hostnames, paths) are
skipped. Exit 0 when everything matches; prints one line per file and the largest deviation.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from pathlib import Path

TABLE_SUFFIXES = {".csv", ".tsv", ".md", ".json", ".txt", ".tex"}
DEFAULT_IGNORE = [r"(?i)(^|_)(wall|time|seconds|elapsed|duration|host|hostname|path|date|timestamp)(_s)?$"]


def _num(cell: str):
    try:
        return float(cell)
    except ValueError:
        return None


def compare_csv(a: Path, b: Path, rtol: float, atol: float, ignore: list[re.Pattern]) -> tuple[list[str], float]:
    delim = "\t" if a.suffix == ".tsv" else ","
    ra = list(csv.reader(a.open(newline=""), delimiter=delim))
    rb = list(csv.reader(b.open(newline=""), delimiter=delim))
    errs: list[str] = []
    worst = 0.0
    if not ra or not rb or ra[0] != rb[0]:
        return [f"header differs: {ra[:1]} vs {rb[:1]}"], math.inf
    header = ra[0]
    skip = {i for i, h in enumerate(header) if any(p.search(h) for p in ignore)}
    if len(ra) != len(rb):
        return [f"row count differs: {len(ra) - 1} vs {len(rb) - 1}"], math.inf
    for r, (row_a, row_b) in enumerate(zip(ra[1:], rb[1:]), start=1):
        if len(row_a) != len(row_b):
            errs.append(f"row {r}: column count differs")
            continue
        for c, (x, y) in enumerate(zip(row_a, row_b)):
            if c in skip or x == y:
                continue
            fx, fy = _num(x), _num(y)
            if fx is None or fy is None:
                errs.append(f"row {r} col {header[c]!r}: {x!r} != {y!r}")
                continue
            if math.isnan(fx) and math.isnan(fy):
                continue
            d = abs(fx - fy)
            worst = max(worst, d / max(abs(fy), 1e-300) if fy else d)
            if not d <= atol + rtol * abs(fy):
                errs.append(f"row {r} col {header[c]!r}: {x} vs {y} (|diff|={d:.3g})")
    return errs, worst


NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|NaN|inf")


def compare_text(a: Path, b: Path, rtol: float, atol: float) -> tuple[list[str], float]:
    """Markdown/JSON/LaTeX tables: the text between numbers must match, numbers within tolerance."""
    ta, tb = a.read_text(), b.read_text()
    sa, sb = NUMBER.split(ta), NUMBER.split(tb)
    na, nb = NUMBER.findall(ta), NUMBER.findall(tb)
    if [s.rstrip() for s in sa] != [s.rstrip() for s in sb] or len(na) != len(nb):
        return ["text (outside numbers) differs"], math.inf
    errs, worst = [], 0.0
    for x, y in zip(na, nb):
        if x == y:
            continue
        fx, fy = float(x), float(y)
        if math.isnan(fx) and math.isnan(fy):
            continue
        d = abs(fx - fy)
        worst = max(worst, d / abs(fy) if fy else d)
        if not d <= atol + rtol * abs(fy):
            errs.append(f"number {x} vs {y} (|diff|={d:.3g})")
    return errs, worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("local", type=Path)
    ap.add_argument("slurm", type=Path)
    ap.add_argument("--rtol", type=float, default=1e-6)
    ap.add_argument("--atol", type=float, default=1e-9)
    ap.add_argument("--ignore-col", action="append", default=None,
                    help="regex of column names not compared (default: timing/host/path columns)")
    args = ap.parse_args()
    ignore = [re.compile(p) for p in (args.ignore_col if args.ignore_col is not None else DEFAULT_IGNORE)]

    def tables(root: Path) -> dict[str, Path]:
        return {str(p.relative_to(root)): p for p in sorted(root.rglob("*"))
                if p.is_file() and p.suffix in TABLE_SUFFIXES}

    ta, tb = tables(args.local), tables(args.slurm)
    if not ta:
        print(f"no tables under {args.local}", file=sys.stderr)
        return 1
    ok = True
    if set(ta) != set(tb):
        ok = False
        print(f"table sets differ: only local {sorted(set(ta) - set(tb))}, only slurm {sorted(set(tb) - set(ta))}")
    worst_all = 0.0
    for name in sorted(set(ta) & set(tb)):
        a, b = ta[name], tb[name]
        if a.suffix in {".csv", ".tsv"}:
            errs, worst = compare_csv(a, b, args.rtol, args.atol, ignore)
            worst_all = max(worst_all, worst)
        else:
            errs, worst = compare_text(a, b, args.rtol, args.atol)
            worst_all = max(worst_all, worst)
        exact = a.read_bytes() == b.read_bytes()
        status = "identical" if exact else ("equal within tolerance" if not errs else "DIFFERENT")
        print(f"{name}: {status}" + (f" (max rel. deviation {worst:.3g})" if not exact and not errs else ""))
        for e in errs[:10]:
            print(f"    {e}")
        ok &= not errs
    print(f"tables: {len(ta)} compared, {'all match' if ok else 'MISMATCH'} (rtol={args.rtol}, atol={args.atol}, "
          f"max rel. deviation {worst_all:.3g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
