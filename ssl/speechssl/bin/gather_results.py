"""Gather every ``<exp-dir>/<features>/eval/<column>/results.json`` into one table:
``<out-dir>/results.md`` (markdown, best value per column in bold), ``results.json`` and
one bar chart per column (``<column>.png``).  The markdown table is also printed."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from speechssl.cli import kaldi_bool, run
from speechssl.errors import InputError
from speechssl.eval.results import ResultsTable, find_results, write_table

log = logging.getLogger("gather_results")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gather_results", description=__doc__)
    p.add_argument("--rows", default="", help="row order, e.g. 'fbank mfcc apc' (others follow)")
    p.add_argument("--columns", default="", help="column order (others follow)")
    p.add_argument("--charts", type=kaldi_bool, default=True)
    p.add_argument("exp_dir")
    p.add_argument("out_dir")
    args = p.parse_args(argv)
    results = find_results(Path(args.exp_dir))
    if not results:
        raise InputError("no results: expected <features>/eval/<evaluation>/results.json "
                         "below it", path=args.exp_dir)
    table = ResultsTable.build(results, args.rows.split(), args.columns.split())
    written = write_table(table, Path(args.out_dir), charts=args.charts)
    sys.stdout.write(table.markdown())
    log.info("%d results (%d rows x %d columns) -> %s", len(results), len(table.rows),
             len(table.columns), ", ".join(str(w) for w in written[:2]))
    return 0


if __name__ == "__main__":
    run(main, "gather_results")
