"""Score a decode dir as Kaldi's ``local/score.sh`` (``steps/score_kaldi.sh``) does: the
WER of each LM weight's hypotheses (``scoring/<lmwt>.tra``) against ``<data>/text``, the
best weight, per-utterance details at that weight, and PER from the best path's phones
(``scoring/<lmwt>.phn``) against ``<data>/phones.ctm`` when both exist; see
:mod:`speechssl.asr.score`.

Writes to ``<decode-dir>``: ``wer_<lmwt>`` (compute-wer's output), ``per_<lmwt>``,
``best_wer`` (``%WER ... <decode-dir>/wer_<lmwt>``), ``scoring/wer_details/per_utt`` and,
last, ``results.json`` (``task: asr``, or ``asr_gmm`` for a GMM's decoding: WER at the
best weight, that weight, SER, insertions/deletions/substitutions, PER, the 95% intervals
of WER and PER over the speakers of ``<data>/utt2spk`` (``wer_ci``, ``per_ci``, see
:mod:`speechssl.eval.bootstrap`), and the decoding RTF of ``decode_stats.json`` files).  The
best weight is the one of lowest WER (ties: the smaller weight); tune it on dev, then decode
test with that one weight (``--lmwt``).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from speechssl.asr import score
from speechssl.asr.decode import POSITION, read_symbols
from speechssl.cli import run
from speechssl.data.ctm import read_ctm
from speechssl.data.datadir import DataDir
from speechssl.errors import InputError, examples
from speechssl.eval.bootstrap import bootstrap, speaker_index, weighted_ratio
from speechssl.eval.results import remove_outputs, write_results
from speechssl.fileio import atomic_write

log = logging.getLogger("score_wer")
TRA = re.compile(r"^(\d+)\.tra$")


def build_parser() -> argparse.ArgumentParser:
    """steps/score_wer.sh's defaults (tests/test_cli_defaults.py)."""
    p = argparse.ArgumentParser(prog="score_wer", description=__doc__)
    p.add_argument("--mode", choices=score.MODES, default="present",
                   help="missing hypotheses: compute-wer --mode (present: Kaldi's scoring)")
    p.add_argument("--features", help="the results' 'features' name (default: data dir's)")
    p.add_argument("data_dir")
    p.add_argument("lang_or_graph_dir")
    p.add_argument("decode_dir")
    return p


def scored_weights(decode_dir: Path) -> list[int]:
    found = sorted(int(m[1]) for p in (decode_dir / "scoring").glob("*.tra")
                   if (m := TRA.match(p.name)))
    if not found:
        raise InputError("no scoring/<lmwt>.tra: run steps/decode.sh first", path=decode_dir)
    return found


def reference_phones(data_dir: Path, silence: set[str]) -> dict[str, list[str]] | None:
    """Each utterance's phones of ``phones.ctm`` (one recording per utterance), position
    markers stripped, silence removed; None without phones.ctm."""
    path = data_dir / "phones.ctm"
    if not path.is_file():
        return None
    return {utt: [POSITION.sub("", e.token) for e in entries
                  if POSITION.sub("", e.token) not in silence]
            for utt, entries in sorted(read_ctm(path).items())}


def silence_of(lang_or_graph: Path) -> set[str]:
    phones = {i: s for s, i in read_symbols(lang_or_graph / "phones.txt").items()}
    csl = lang_or_graph / "phones" / "silence.csl"
    if not csl.is_file():
        raise InputError("no phones/silence.csl: PER needs the silence phones",
                         path=lang_or_graph)
    return {POSITION.sub("", phones[int(i)]) for i in csl.read_text().strip().split(":")}


def score_weight(refs, hyps, mode: str, name: str, out: Path,
                 ) -> tuple[score.ErrorCounts, dict[str, tuple[int, ...]]]:
    """The totals (written to ``out``) and the per-utterance counts of one scoring."""
    counts, per_utt = score.score_texts(refs, hyps, mode)
    with atomic_write(out) as f:
        f.write(score.format_counts(counts, name))
    if counts.missing:
        log.warning("%s: %d utterances have no hypothesis (%s)", out, counts.missing,
                    " ".join(counts.missing_utts[:5]))
    return counts, per_utt


def error_rate_interval(per_utt: Mapping[str, tuple[int, ...]], utt2spk: Mapping[str, str],
                        data: Path) -> dict:
    """:func:`bootstrap` of the error rate in percent over the scored utterances' speakers:
    an utterance's errors and reference tokens count as often as its speaker is drawn."""
    if not per_utt:   # nothing scored (every hypothesis missing): no interval
        return {"ci": None, "bootstrap": None}
    missing = [u for u in per_utt if u not in utt2spk]
    if missing:
        raise InputError(f"{len(missing)} scored utterances have no speaker "
                         f"({examples(missing)})", path=data / "utt2spk")
    names, speaker = speaker_index([utt2spk[u] for u in per_utt])
    ratio = weighted_ratio(*score.utterance_errors(per_utt), speaker, len(names))

    def error_rate(weights: np.ndarray) -> float | None:
        value = ratio(weights)
        return None if value is None else 100.0 * value
    return bootstrap(error_rate, len(names))


def rounded(ci: list[float] | None) -> list[float] | None:
    """An interval rounded as the error rates (2 decimals of a percent)."""
    return None if ci is None else [round(x, 2) for x in ci]


def decode_stats(decode_dir: Path) -> dict:
    """Totals of the decode jobs' ``decode_stats.json`` (decode dir or its log/)."""
    files = sorted(decode_dir.glob("decode_stats.json")) + sorted(
        (decode_dir / "log").glob("decode_stats.*.json"))
    total: dict = {}
    for path in files:
        stats = json.loads(path.read_text())
        for key in ("utterances", "frames", "failed", "decode_cpu_seconds",
                    "acoustic_cpu_seconds", "audio_seconds"):
            total[key] = total.get(key, 0) + stats.get(key, 0)
        total["lmwts"] = len(stats.get("lmwts", [])) or 1
        total["model"] = stats.get("model", "dnn")
        if "layer_weights" in stats:
            total["layer_weights"] = stats["layer_weights"]
    if total.get("audio_seconds"):
        total["rtf"] = round(total["decode_cpu_seconds"] / (total["audio_seconds"]
                                                            * total["lmwts"]), 4)
        total["acoustic_rtf"] = round(total["acoustic_cpu_seconds"] / total["audio_seconds"], 4)
    return total


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    data, lang, out = Path(args.data_dir), Path(args.lang_or_graph_dir), Path(args.decode_dir)
    remove_outputs(out, ["best_wer"])
    refs = score.read_transcripts(data / "text")
    utt2spk = DataDir(data).utt2spk   # the unit of the error rates' intervals
    id2word = {i: w for w, i in read_symbols(lang / "words.txt").items()}
    weights = scored_weights(out)
    scored = {w: score_weight(refs, score.read_int_transcripts(out / "scoring" / f"{w}.tra",
                                                               id2word),
                              args.mode, "WER", out / f"wer_{w}") for w in weights}
    wer = {w: counts for w, (counts, _) in scored.items()}
    best = min(weights, key=lambda w: (wer[w].error_rate, w))
    interval = error_rate_interval(scored[best][1], utt2spk, data)
    hyps = score.read_int_transcripts(out / "scoring" / f"{best}.tra", id2word)
    with atomic_write(out / "scoring" / "wer_details" / "per_utt") as f:
        f.write("\n".join(score.per_utt_details(refs, hyps)) + "\n")
    line = score.format_counts(wer[best]).splitlines()[0]
    with atomic_write(out / "best_wer") as f:
        f.write(f"{line} {out}/wer_{best}\n")
    stats = decode_stats(out)
    # The table's column: the hybrid DNN's WER, or the GMM's (a column of its own).
    task = "asr_gmm" if stats.get("model") == "gmm" else "asr"
    results = {"task": task, "features": args.features or data.name,
               **wer[best].as_dict("wer"), "wer_ci": rounded(interval["ci"]), "lmwt": best,
               "ser": round(wer[best].sentence_error_rate, 2),
               "num_utts": wer[best].sentences, "missing_hyps": wer[best].missing,
               "mode": args.mode, "wer_by_lmwt": {str(w): round(wer[w].error_rate, 2)
                                                  for w in weights},
               **per_results(data, lang, out, refs, best, args.mode, utt2spk),
               "bootstrap": interval["bootstrap"], "decode": stats, "data_dir": str(data)}
    if "layer_weights" in stats:   # the DNN's weighted sum of stacked layers
        results["layer_weights"] = stats.pop("layer_weights")
    write_results(out, results)
    log.info("%s (LM weight %d of %d-%d; 95%% interval over speakers %s)", line, best,
             weights[0], weights[-1], results["wer_ci"])
    return 0


def per_results(data: Path, lang: Path, out: Path, refs, best: int, mode: str,
                utt2spk: Mapping[str, str]) -> dict:
    """PER at the best LM weight with its interval (and per_<lmwt> files), or why there is
    none."""
    if not (out / "scoring" / f"{best}.phn").is_file():
        return {"per_note": "no scoring/<lmwt>.phn (the graph had no phones/silence.csl)"}
    ref = reference_phones(data, silence_of(lang))
    if ref is None:
        return {"per_note": f"no {data}/phones.ctm: no phone reference"}
    ref = {u: ref.get(u, []) for u in refs}
    hyps = score.read_transcripts(out / "scoring" / f"{best}.phn")
    counts, per_utt = score_weight(ref, hyps, mode, "PER", out / f"per_{best}")
    interval = error_rate_interval(per_utt, utt2spk, data)
    return {**counts.as_dict("per"), "per_ci": rounded(interval["ci"]),
            "per_reference": "phones.ctm"}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


if __name__ == "__main__":
    run(main, "score_wer")
