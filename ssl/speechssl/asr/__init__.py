"""Hybrid DNN-HMM ASR without Kaldi's binaries, on Kaldi's file formats: lang dirs
(lexicon FSTs, phone lists, topology), n-gram LMs (ARPA, G.fst), monophone GMM-HMMs
(final.mdl, tree, ali.*.gz), decoding graphs (HCLG.fst), a DNN on frozen frame-level
features, decoding and WER scoring.  kaldi-hmm-gmm and kaldifst do the HMM and FST work."""
