"""Compare two results tables (``exp/results/results.json`` of ``utils/gather_results.sh``),
e.g. egs/mini on two corpus seeds: per cell, both values with their 95% intervals and the
difference; per column, both winners; and every claim the first table supports (one row
better than another with intervals that do not overlap), checked on the second.

    python bench/compare_results.py seed0/exp/results/results.json seed1/exp/results/results.json

Not a test: its output is what README's claims are checked against.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def load(path: Path) -> dict:
    table = json.loads(Path(path).read_text(encoding="utf-8"))
    if not {"columns", "tasks", "results"} <= set(table):
        raise SystemExit(f"{path}: not a gather_results.sh results.json")
    return table


def cell(table: dict, row: str, column: str) -> tuple[float, list | None] | None:
    values = table["results"].get(row, {}).get(column)
    if values is None:
        return None
    metric = table["tasks"][column]["metric"]
    return float(values[metric]), values.get(f"{metric}_ci")


def separated(a: list | None, b: list | None) -> bool:
    return a is not None and b is not None and (a[1] < b[0] or b[1] < a[0])


def claims(table: dict, column: str) -> list[tuple[str, str]]:
    """(better, worse) pairs of rows whose intervals do not overlap."""
    higher = table["tasks"][column]["higher_is_better"]
    rows = [r for r in table["rows"] if cell(table, r, column) is not None]
    out = []
    for r in rows:
        for s in rows:
            (va, ca), (vb, cb) = cell(table, r, column), cell(table, s, column)
            if (va > vb if higher else va < vb) and separated(ca, cb):
                out.append((r, s))
    return out


def fmt(x: tuple[float, list | None] | None) -> str:
    if x is None:
        return "-"
    value, ci = x
    return f"{value:.4g}" + (f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "")


def compare(first: dict, second: dict, names: tuple[str, str]) -> dict:
    columns = [c for c in first["columns"] if c in second["columns"]]
    rows = [r for r in first["rows"] if r in second["rows"]]
    print(f"{'column':<22} {'row':<8} {names[0]:>26} {names[1]:>26} {'difference':>11} "
          "inside")
    cells = []
    for c in columns:
        for r in rows:
            a, b = cell(first, r, c), cell(second, r, c)
            if a is None or b is None:
                continue
            inside = a[1] is not None and a[1][0] <= b[0] <= a[1][1]
            cells.append({"column": c, "row": r, "first": a[0], "second": b[0],
                          "difference": b[0] - a[0], "second_inside_first_ci": inside})
            print(f"{c:<22} {r:<8} {fmt(a):>26} {fmt(b):>26} {b[0] - a[0]:>+11.4g} "
                  f"{'yes' if inside else 'no'}")
    print()
    checked = []
    for c in columns:
        best = (first["tasks"][c]["best"], second["tasks"][c]["best"])
        print(f"{c}: best {best[0]} ({names[0]}), {best[1]} ({names[1]})")
        for better, worse in claims(first, c):
            a, b = cell(second, better, c), cell(second, worse, c)
            if a is None or b is None:
                continue
            higher = first["tasks"][c]["higher_is_better"]
            same_order = a[0] > b[0] if higher else a[0] < b[0]
            still_separated = same_order and separated(a[1], b[1])
            checked.append({"column": c, "better": better, "worse": worse,
                            "same_order": same_order, "separated": still_separated})
            verdict = ("held, separated" if still_separated else
                       "held, intervals overlap" if same_order else "reversed")
            print(f"  {better} better than {worse}: {verdict} on {names[1]}")
    held = sum(x["separated"] for x in checked)
    print(f"\n{len(checked)} claims on {names[0]} (intervals apart); on {names[1]}: "
          f"{sum(x['same_order'] for x in checked)} in the same order, {held} still apart")
    return {"names": list(names), "cells": cells, "claims": checked}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("first", type=Path)
    p.add_argument("second", type=Path)
    p.add_argument("--names", default="first,second", help="two labels, comma-separated")
    p.add_argument("--json", type=Path, help="also write the comparison here")
    args = p.parse_args()
    names = tuple(args.names.split(","))
    if len(names) != 2:
        raise SystemExit("--names takes two labels")
    result = compare(load(args.first), load(args.second), names)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
