"""The embedded corpus: multi-speaker, multi-language speech synthesised with eSpeak NG.

Real corpora cannot be downloaded in tests, so ``python -m speechssl.bin.make_mini_corpus``
builds one with exact word and phone alignments.  Modules, one job each:
``espeak`` (ctypes binding), ``vocabulary`` (languages and words), ``speakers`` (speaker
sampling and the train/dev/test split), ``align`` (events -> alignments), ``render`` (one
utterance at 16 kHz), ``distort`` (optional reverberation, noise, band-pass, gain),
``data_dirs`` (data dirs, CTMs, trials, word lists),
``presets`` and ``generate`` (one process per speaker, then the files).

Output layout (all tables C-sorted, ``key value...``)::

    <wav-dir>/<spk>/<utt>.wav            16 kHz, 16-bit, mono; a whole number of ms long
    <data-dir>/{train,dev,test}/         disjoint speakers
        wav.scp utt2spk spk2utt text utt2lang utt2dur spk2gender   (Kaldi)
        words.ctm   <utt> 1 <start> <dur> <word|<sil>>   tiles each file from 0 to its end
        phones.ctm  <utt> 1 <start> <dur> <phone|sil>    tiles each file from 0 to its end
        trials          (test) <enroll-utt> <test-utt> target|nontarget
        samediff_words  (dev, test) <word>_<spk>_<utt>_<start>-<end> <utt> <start> <end>
                        start/end: 10 ms frame indices (end exclusive), 6 digits in the key
    <data-dir>/local/dict/  lexicon.txt (<word> <phones...>, one line per pronunciation;
                        <sil> sil; <unk> spn), nonsilence_phones.txt,
                        silence_phones.txt (sil, spn), optional_silence.txt (sil),
                        phones.txt (<eps> 0, sil 1, then C order, then spn)
    <data-dir>/speakers           <spk> set= lang= gender= voice= pitch= range= rate= ...
    <data-dir>/summary            counts, seconds of audio per set, rejected sentences
    <data-dir>/rejected_sentences <utt-id> <reason> :: <words>   (replaced, never kept)
    <data-dir>/corpus_config.json the resolved configuration and seed

Ids: speaker ``<lang>-<variant>-s<NNN>`` (e.g. ``en-m3-s001``), utterance ``<spk>-<NNNN>``;
no underscores, so a same-different key splits on ``_`` into word, speaker, utterance and
span.  Phones are eSpeak's phoneme mnemonics with stress marks removed, shared across
languages (not language-prefixed: ``t`` in English and German is one phone); words are
unique across languages, so one lexicon serves all.  CTM times are whole milliseconds,
rounded from boundaries that are exact in output samples.
"""
