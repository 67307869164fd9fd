"""Kaldi-compatible features: fbank/MFCC configs and extraction, CMVN, deltas, torch fbank.

Each piece matches a Kaldi program: :class:`FeatureExtractor` is compute-fbank-feats /
compute-mfcc-feats (in NumPy, kaldi_compute.py; kaldi-native-fbank is the reference and the
other backend), :func:`cmvn_stats` and :func:`apply_cmvn` are compute-cmvn-stats and
apply-cmvn, :func:`add_deltas` is add-deltas, and :class:`TorchFbank` is
compute-fbank-feats in torch for on-the-fly features.
"""

from speechssl.features.cmvn import apply_cmvn, cmvn_stats
from speechssl.features.deltas import add_deltas
from speechssl.features.extractor import FeatureExtractor
from speechssl.features.options import (
    FEATURE_CONFIGS,
    FbankConfig,
    MfccConfig,
    load_feature_config,
    read_kaldi_conf,
)

__all__ = [
    "FEATURE_CONFIGS",
    "FbankConfig",
    "FeatureExtractor",
    "MfccConfig",
    "TorchFbank",
    "add_deltas",
    "apply_cmvn",
    "cmvn_stats",
    "load_feature_config",
    "read_kaldi_conf",
]


def __getattr__(name: str):
    """Import TorchFbank on first use: torch takes ~1 s to import, which every
    compute_feats job would otherwise pay without using it."""
    if name == "TorchFbank":
        from speechssl.features.torch_fbank import TorchFbank

        return TorchFbank
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
