"""Hybrid DNN-HMM ASR without Kaldi's binaries, on Kaldi's file formats: lang dirs
(lexicon FSTs, phone lists, topology), n-gram LMs (ARPA, G.fst), monophone GMM-HMMs
(final.mdl, tree, ali.*.gz), decoding graphs (HCLG.fst), a DNN on frozen frame-level
features, decoding and WER scoring.  kaldi-hmm-gmm and kaldifst do the HMM and FST work."""

# kaldilm imported before kaldifst or kaldi_hmm_gmm makes their import hang (seen with
# kaldilm 1.15.5, kaldifst 1.7.17, kaldi-hmm-gmm 1.1.4): import them first, here, so any
# module of this package is safe whatever its callers imported.
import kaldi_hmm_gmm  # noqa: E402, F401  isort: skip
import kaldifst  # noqa: E402, F401  isort: skip
