"""Build the decoding graph HCLG.fst of a lang dir with G.fst and a model dir (final.mdl,
tree) as Kaldi's utils/mkgraph.sh does; the graph dir (HCLG.fst, words.txt, phones.txt,
phones/, num_pdfs, disambig_tid.int) appears whole or not at all.  See
:mod:`speechssl.asr.graph`."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from speechssl.asr.graph import GraphOptions, mkgraph
from speechssl.cli import run

log = logging.getLogger("mkgraph")


def build_parser() -> argparse.ArgumentParser:
    """utils/mkgraph.sh's options and defaults (the step passes each one)."""
    p = argparse.ArgumentParser(prog="mkgraph", description=__doc__)
    p.add_argument("--transition-scale", type=float, default=1.0,
                   help="scale of the transition probabilities in H (default: 1.0)")
    p.add_argument("--self-loop-scale", type=float, default=0.1,
                   help="scale of the self-loop probabilities (default: 0.1)")
    p.add_argument("lang_dir", help="a lang dir with G.fst (utils/format_lm.sh)")
    p.add_argument("model_dir", help="with final.mdl and tree (and phones.txt)")
    p.add_argument("graph_dir")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    mkgraph(args.lang_dir, args.model_dir, args.graph_dir,
            GraphOptions(args.transition_scale, args.self_loop_scale))
    log.info("Wrote %s/HCLG.fst", args.graph_dir)
    return 0


if __name__ == "__main__":
    run(main, "mkgraph")
