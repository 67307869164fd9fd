"""Train CAE-RNN acoustic word embeddings on a data dir's word alignment, one model per
seed, embed a word list's segments and score them by same-different AP (cosine distance
over all pairs; see speechssl.eval.awe and speechssl.eval.samediff).  steps/train_awe.sh
runs this.

Per seed, <exp-dir>/seed<N>/ gets final.pt, config.yaml, embeddings.ark + embeddings.scp
(one Kaldi float vector per word-list key) and, last, results.json: a seed dir with
results.json for the same inputs and config is finished and is not trained again.
--job J --nj N trains every N-th seed from the J-th (1-based) for parallel jobs;
--summarize trains nothing and writes <exp-dir>/results.json over the seeds.  Either way
the exp dir's own results.json and config.yaml are removed first: they describe a finished
run, and only --summarize writes them again.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from speechssl.cli import add_device_option, kaldi_bool, positive_int, run
from speechssl.errors import InputError
from speechssl.eval.results import remove_outputs, write_results
from speechssl.fileio import atomic_write

log = logging.getLogger("train_awe")

SEED_OUTPUTS = ("results.json", "final.pt", "config.yaml", "embeddings.ark", "embeddings.scp")


def build_parser() -> argparse.ArgumentParser:
    """The options, with steps/train_awe.sh's defaults (tests/test_cli_defaults.py); the
    step resolves --cmvn, --norm-vars and --delta-order (from <train-dir>/eval_opts)."""
    p = argparse.ArgumentParser(prog="train_awe", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="AWE config (YAML); default: the published settings")
    p.add_argument("--seeds", default="0", help="seeds, blank-separated, e.g. '0 1 2'")
    p.add_argument("--cmvn", type=kaldi_bool, required=True,
                   help="true: subtract the speaker mean (needs cmvn.scp)")
    p.add_argument("--norm-vars", type=kaldi_bool, required=True,
                   help="true: divide by the speaker's standard deviation too (cmvn.scp)")
    p.add_argument("--delta-order", type=int, required=True, help="2 gives MFCC 13 -> 39")
    add_device_option(p, "where to train")
    p.add_argument("--job", type=positive_int, default=1, help="this job's number, 1..--nj")
    p.add_argument("--nj", type=positive_int, default=1, help="jobs sharing the seeds")
    p.add_argument("--summarize", action="store_true",
                   help="write <exp-dir>/results.json from the finished seeds")
    p.add_argument("train_dir", help="data dir with feats.scp and words.ctm")
    p.add_argument("test_dir", help="data dir with the test words' features")
    p.add_argument("word_list", help="test words: <word>_<spk>_... <utt> <start> <end>")
    p.add_argument("exp_dir")
    return p


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    try:
        args.seeds = [int(s) for s in args.seeds.replace(",", " ").split()]
    except ValueError:
        p.error(f"--seeds must be integers, got '{args.seeds}'")
    if not args.seeds or len(set(args.seeds)) != len(args.seeds) or min(args.seeds) < 0:
        p.error(f"--seeds must be distinct non-negative integers, got {args.seeds}")
    if not 1 <= args.job <= args.nj:
        p.error(f"need 1 <= --job <= --nj, got {args.job} and {args.nj}")
    return args


def run_inputs(args: argparse.Namespace, config: dict[str, Any]) -> dict[str, Any]:
    """Everything a seed's result depends on besides the seed: what makes it reusable."""
    return {"train_dir": str(Path(args.train_dir).resolve()),
            "test_dir": str(Path(args.test_dir).resolve()),
            "word_list": str(Path(args.word_list).resolve()),
            "cmvn": args.cmvn, "norm_vars": args.norm_vars, "delta_order": args.delta_order,
            "config": config}


def finished_result(seed_dir: Path, inputs: dict[str, Any]) -> dict[str, Any] | None:
    """The seed's results if it finished with these inputs, else None."""
    path = seed_dir / "results.json"
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    if result.get("inputs") != inputs:
        log.warning("%s was made with other inputs or config: not reused", path)
        return None
    return result


def check_dims(train_dim: int, test_segments: list[np.ndarray], args: argparse.Namespace):
    test_dim = int(test_segments[0].shape[1])
    if test_dim != train_dim:
        raise InputError(f"test features are {test_dim}-dimensional but the training "
                         f"features ({Path(args.train_dir) / 'feats.scp'}) are {train_dim}-"
                         "dimensional: train and test must use the same features",
                         path=Path(args.test_dir) / "feats.scp")


def write_seed(seed_dir: Path, seed: int, model, config, keys: list[str],
               embeddings: np.ndarray, result: dict[str, Any]) -> None:
    """The seed's files, results.json last (its presence marks the seed finished)."""
    import torch

    from speechssl.data.ark import ArkScpWriter

    with atomic_write(seed_dir / "final.pt", "wb") as f:
        torch.save({"config": config.to_dict(), "input_dim": model.input_dim, "seed": seed,
                    "model": model.state_dict()}, f)
    with atomic_write(seed_dir / "config.yaml") as f:
        yaml.safe_dump(config.to_dict(), f, sort_keys=False)
    with ArkScpWriter(seed_dir / "embeddings.ark", seed_dir / "embeddings.scp") as writer:
        for i in np.argsort(keys, kind="stable"):  # C-sorted keys, for random access
            writer.write(keys[i], embeddings[i])
    write_results(seed_dir, result)


def train_and_score(seed: int, words, segments, test_feats, config, inputs, device,
                    seed_dir: Path) -> dict[str, Any]:
    from scipy.spatial.distance import pdist

    from speechssl.eval.awe import embed_segments, train_seed
    from speechssl.eval.samediff import score

    for name in SEED_OUTPUTS:  # a stale seed dir must not look finished half-way
        (seed_dir / name).unlink(missing_ok=True)
    start, cpu_start = time.perf_counter(), time.process_time()
    model, history = train_seed(words, config, seed, device)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    embeddings = embed_segments(model, test_feats, config.data.max_frames, device)
    # The interval is of the mean over seeds: summarize() computes it.
    scores = score(segments, pdist(embeddings.astype(np.float64), "cosine"), intervals=False)
    result = {"seed": seed, "ap": scores["ap"], "prb": scores["prb"],
              "ap_diff_speaker": scores["ap_diff_speaker"],
              "prb_diff_speaker": scores["prb_diff_speaker"],
              "train_seconds": round(seconds, 3), "train_cpu_seconds": round(cpu_seconds, 3),
              "ae_losses": history["ae"], "cae_losses": history["cae"],
              "num_train_tokens": len(words.tokens),
              "num_pairs": int(len(words.pairs)), "num_segments": scores["num_segments"],
              "random_ap": scores["random_ap"], "device": str(device), "inputs": inputs}
    write_seed(seed_dir, seed, model, config, [s.key for s in segments], embeddings, result)
    log.info("seed %d: AP %.4f PRB %.4f (different speakers AP %s) after %.1f s of "
             "training", seed, result["ap"], result["prb"], result["ap_diff_speaker"],
             seconds)
    return result


def train_seeds(args: argparse.Namespace, config, inputs: dict[str, Any]) -> None:
    import torch

    from speechssl.data.feature_loader import FeatureLoader, FeatureTransform
    from speechssl.eval.awe import load_training_words
    from speechssl.eval.samediff import cut_segments, read_word_list

    exp = Path(args.exp_dir)
    todo = [s for s in args.seeds[args.job - 1::args.nj]
            if finished_result(exp / f"seed{s}", inputs) is None]
    for seed in sorted(set(args.seeds[args.job - 1::args.nj]) - set(todo)):
        log.info("seed %d already finished: %s", seed, exp / f"seed{seed}" / "results.json")
    if not todo:
        return
    torch.set_num_threads(1)  # one core per job: seeds run as parallel jobs instead
    from speechssl.train.distributed import select_device

    device = select_device(args.device)
    transform = FeatureTransform(cmvn=args.cmvn, norm_vars=args.norm_vars,
                                 delta_order=args.delta_order)
    segments = read_word_list(args.word_list)
    check_unique_keys(segments, args.word_list)
    test_feats = cut_segments(FeatureLoader(args.test_dir, transform), segments,
                              args.word_list)
    words = load_training_words(args.train_dir, transform, config.data)
    check_dims(words.input_dim, test_feats, args)
    left_out = ", ".join(f"{n} {why}" for why, n in sorted(words.skipped.items()))
    log.info("training on %d word tokens (%d-d features) and %d same-word pairs of %s "
             "(left out of words.ctm: %s); testing on %d segments", len(words.tokens),
             words.input_dim, len(words.pairs), args.train_dir, left_out or "nothing",
             len(segments))
    for seed in todo:
        train_and_score(seed, words, segments, test_feats, config, inputs, device,
                        exp / f"seed{seed}")


def check_unique_keys(segments, path: str) -> None:
    """The keys name the embeddings in the archive: each must occur once."""
    first_line: dict[str, int] = {}
    for seg in segments:
        if seg.key in first_line:
            raise InputError(f"duplicate key (first on line {first_line[seg.key]})",
                             path=path, line=seg.line, key=seg.key)
        first_line[seg.key] = seg.line


def mean_or_none(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else float(np.mean(values))


def mean_ap_interval(args: argparse.Namespace, exp: Path) -> dict[str, Any]:
    """The speaker-bootstrap interval of the AP averaged over the seeds: every seed's
    embeddings scored in the same draws, the draws' means taken."""
    from scipy.spatial.distance import pdist

    from speechssl.data.ark import iter_scp
    from speechssl.eval import bootstrap
    from speechssl.eval.samediff import ap_draws, pair_labels, read_word_list

    segments = read_word_list(args.word_list)
    same_word, _, spk_i, spk_j = pair_labels(segments)
    num_speakers = len({s.speaker for s in segments})
    draws = bootstrap.speaker_draws(num_speakers)
    values = []
    for seed in args.seeds:
        vectors = dict(iter_scp(exp / f"seed{seed}" / "embeddings.scp"))
        emb = np.stack([vectors[s.key] for s in segments]).astype(np.float64)
        values.append(ap_draws(pdist(emb, "cosine"), same_word, spk_i, spk_j, draws))
    return bootstrap.interval_of_draws(np.mean(values, axis=0), num_speakers)


def summarize(args: argparse.Namespace, config: dict[str, Any],
              inputs: dict[str, Any]) -> dict[str, Any]:
    """results.json over the seeds; every seed must have finished with these inputs."""
    exp = Path(args.exp_dir)
    per_seed = []
    for seed in args.seeds:
        result = finished_result(exp / f"seed{seed}", inputs)
        if result is None:
            raise InputError(f"seed {seed} has not finished (see {exp / 'log'})",
                             path=exp / f"seed{seed}" / "results.json")
        per_seed.append(result)
    ap = [r["ap"] for r in per_seed]
    interval = mean_ap_interval(args, exp)
    summary = {
        "task": "awe", "features": Path(os.path.abspath(args.test_dir)).name,
        "ap_mean": float(np.mean(ap)), "ap_std": float(np.std(ap)),
        "ap_mean_ci": interval["ci"], "bootstrap": interval["bootstrap"],
        "prb_mean": float(np.mean([r["prb"] for r in per_seed])),
        "ap_diff_speaker_mean": mean_or_none([r["ap_diff_speaker"] for r in per_seed]),
        "seeds": args.seeds,
        "per_seed": [{k: r[k] for k in ("seed", "ap", "prb", "ap_diff_speaker",
                                        "train_seconds")} for r in per_seed],
        "num_train_tokens": per_seed[0]["num_train_tokens"],
        "num_pairs": per_seed[0]["num_pairs"], "num_segments": per_seed[0]["num_segments"],
        "random_ap": per_seed[0]["random_ap"], "config": config,
        **{k: v for k, v in inputs.items() if k != "config"}}
    with atomic_write(exp / "config.yaml") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    write_results(exp, summary)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    exp = Path(args.exp_dir)
    exp.mkdir(parents=True, exist_ok=True)
    remove_outputs(exp, ("config.yaml",))  # the seed dirs stay: finished seeds are reused
    from speechssl.eval.awe import load_awe_config  # imports torch: after the arguments

    config = load_awe_config(args.config)
    inputs = run_inputs(args, config.to_dict())
    if args.summarize:
        summary = summarize(args, config.to_dict(), inputs)
        log.info("AP %.4f +- %.4f over seeds %s (PRB %.4f); wrote %s", summary["ap_mean"],
                 summary["ap_std"], args.seeds, summary["prb_mean"], exp / "results.json")
        return 0
    train_seeds(args, config, inputs)
    return 0


if __name__ == "__main__":
    run(main, "train_awe")
