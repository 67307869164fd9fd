"""Corpora: the embedded one, synthesised here, and data preparation for the real ones.

Real corpora, read as their distributions lay them out (see each module): ``librispeech``
and ``cpc_protocol`` (the CPC phone and speaker split), ``voxceleb`` and ``noises``
(MUSAN and RIRS_NOISES lists), ``wrd``, ``awe_corpus`` and ``utd_pairs`` (Buckeye and
ZeroSpeech Xitsonga for acoustic word embeddings).

The embedded corpus, synthesised with eSpeak NG, is the subpackage :mod:`speechssl.corpus.synth`.
"""
