"""Downstream evaluations of frame-level and utterance-level representations.

Each evaluation reads a Kaldi data dir of features and writes ``results.json`` in its exp
dir, e.g. :mod:`speechssl.eval.samediff` (same-different word discrimination).
"""
