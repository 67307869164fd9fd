"""Typed fbank/MFCC configs that read Kaldi option files (``conf/fbank.conf``).

The options, their names and their defaults are those of Kaldi's ``compute-fbank-feats``
and ``compute-mfcc-feats`` (``FrameExtractionOptions``, ``MelBanksOptions``,
``FbankOptions``, ``MfccOptions``), so a Kaldi recipe's conf file works unchanged.  Each
default exists once, in the dataclass field that also names its Kaldi option.

Note Kaldi's ``--dither=1.0`` default (kaldi-native-fbank's own default is 3e-5): the dither
is applied by :class:`speechssl.features.FeatureExtractor`, never by kaldi-native-fbank.

>>> cfg = FbankConfig.from_kaldi_options({"num-mel-bins": "80", "snip-edges": "false"})
>>> cfg.dim, cfg.frame_shift, cfg.window_size, cfg.padded_window_size
(80, 0.01, 400, 512)
>>> MfccConfig().dim
13
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from typing import ClassVar

import kaldi_native_fbank as knf

from speechssl.errors import InputError

WINDOW_TYPES = ("hamming", "hanning", "povey", "rectangular", "sine", "blackman")
FLOAT32_EPS = 1.1920928955078125e-07  # std::numeric_limits<float>::epsilon(), Kaldi's floor

# Options that Kaldi's programs accept but speechssl does not implement.  A conf file may
# name them only with their Kaldi default (which does nothing); any other value is an error
# rather than being ignored.
_DEFAULT_ONLY = {
    "allow-downsample": False,
    "allow-upsample": False,
    "max-feature-vectors": -1,
    "debug-mel": False,
    "subtract-mean": False,
    "vtln-warp": 1.0,
    "min-duration": 0.0,
}

_LINE_RE = re.compile(r"--([A-Za-z0-9][A-Za-z0-9_-]*)(?:=(.*))?")


def _opt(default, kaldi: str, doc: str):
    """A config field: its default, its Kaldi option name and what it does."""
    return dataclasses.field(default=default, metadata={"kaldi": kaldi, "doc": doc})


def read_kaldi_conf(path: str | os.PathLike) -> dict[str, str]:
    """Read a Kaldi option file into ``{option-name: value}``, in file order.

    Follows Kaldi's ``ParseOptions::ReadConfigFile``: one ``--name=value`` per line,
    ``#`` starts a comment, blank lines are skipped, ``_`` in names reads as ``-``, a later
    line overrides an earlier one.  A bare ``--flag`` means ``true`` (Kaldi accepts that for
    booleans only; the typed config rejects it for other options).  ``--name value`` is
    not Kaldi syntax and is an error, as in Kaldi.
    """
    return {name: value for _, name, value in _read_conf_lines(path)}


def _read_conf_lines(path: str | os.PathLike) -> list[tuple[int, str, str]]:
    """The ``(line number, name, value)`` of each option line of a Kaldi option file."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read option file: {e}", path=path) from e
    out = []
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = _LINE_RE.fullmatch(line)
        if m is None:
            raise InputError(
                f"expected '--name=value' (a Kaldi option file line), got {raw.strip()!r}",
                path=path, line=number)
        value = "true" if m.group(2) is None else m.group(2).strip()
        out.append((number, m.group(1).replace("_", "-"), value))
    return out


def _parse_bool(text: str) -> bool:
    """Kaldi's ParseOptions::ToBool: true/t/1 or false/f/0, any case."""
    low = text.lower()
    if low in ("true", "t", "1"):
        return True
    if low in ("false", "f", "0"):
        return False
    raise ValueError("expected true or false")


def _parse_value(text: str, like):
    """Parse ``text`` as the type of the default ``like`` (bool, int, float or str)."""
    if isinstance(like, bool):
        return _parse_bool(text)
    if isinstance(like, int):
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise ValueError("expected an integer")
        return int(text)
    if isinstance(like, float):
        try:
            value = float(text)
        except ValueError:
            raise ValueError("expected a number") from None
        if not math.isfinite(value):
            raise ValueError("expected a finite number")
        return value
    return text


@dataclasses.dataclass(frozen=True)
class _FeatureConfig:
    """Options shared by fbank and MFCC: framing, mel banks and energy (Kaldi names)."""

    kind: ClassVar[str] = ""

    sample_frequency: float = _opt(16000.0, "sample-frequency", "waveform rate in Hz")
    frame_length_ms: float = _opt(25.0, "frame-length", "frame length in ms")
    frame_shift_ms: float = _opt(10.0, "frame-shift", "frame shift in ms")
    dither: float = _opt(1.0, "dither", "std of Gaussian noise added (int16 scale)")
    preemphasis_coefficient: float = _opt(0.97, "preemphasis-coefficient", "pre-emphasis")
    remove_dc_offset: bool = _opt(True, "remove-dc-offset", "subtract each frame's mean")
    window_type: str = _opt("povey", "window-type", "one of " + ", ".join(WINDOW_TYPES))
    round_to_power_of_two: bool = _opt(True, "round-to-power-of-two", "FFT size 2^k")
    blackman_coeff: float = _opt(0.42, "blackman-coeff", "for window-type=blackman")
    snip_edges: bool = _opt(True, "snip-edges", "only frames that fit (false: reflect)")
    num_mel_bins: int = _opt(23, "num-mel-bins", "number of triangular mel bins")
    low_freq: float = _opt(20.0, "low-freq", "lowest mel bin edge in Hz")
    high_freq: float = _opt(0.0, "high-freq", "highest edge in Hz; <= 0: offset from Nyquist")
    vtln_low: float = _opt(100.0, "vtln-low", "VTLN warp lower cutoff (unused: no warping)")
    vtln_high: float = _opt(-500.0, "vtln-high", "VTLN warp upper cutoff (unused)")
    use_energy: bool = _opt(False, "use-energy", "add log energy as a coefficient")
    energy_floor: float = _opt(0.0, "energy-floor", "floor on the energy (absolute)")
    raw_energy: bool = _opt(True, "raw-energy", "energy before pre-emphasis and window")
    htk_compat: bool = _opt(False, "htk-compat", "energy last, HTK-style")

    def __post_init__(self):
        problems = self._problems()
        if problems:
            raise InputError(f"bad {self.kind} options: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        """Kaldi's own checks on the options (FrameExtractionOptions, MelBanks)."""
        out = []
        if self.sample_frequency <= 0 or self.frame_shift_ms <= 0:
            out.append("sample-frequency and frame-shift must be positive")
        elif self.window_shift < 1 or self.window_size < 2:
            out.append(f"frame-length {self.frame_length_ms} ms is too short")
        if self.window_type not in WINDOW_TYPES:
            out.append(f"window-type {self.window_type!r} is not one of {WINDOW_TYPES}")
        if self.dither < 0:
            out.append(f"dither {self.dither} must be >= 0")
        if self.num_mel_bins < 3:
            out.append(f"num-mel-bins {self.num_mel_bins} must be at least 3")
        nyquist = 0.5 * self.sample_frequency
        high = self.mel_high_freq
        if not (0 <= self.low_freq < nyquist and 0 < high <= nyquist and high > self.low_freq):
            out.append(f"need 0 <= low-freq ({self.low_freq}) < high-freq ({high}) <= "
                       f"Nyquist ({nyquist})")
        return out

    @classmethod
    def kaldi_names(cls) -> dict[str, str]:
        """Map each Kaldi option name to its field name."""
        return {f.metadata["kaldi"]: f.name for f in dataclasses.fields(cls)}

    @classmethod
    def from_kaldi_options(
        cls,
        opts: dict[str, str],
        path: str | os.PathLike | None = None,
        lines: dict[str, int] | None = None,
    ):
        """Build a config from ``{kaldi-option-name: value}`` (as read_kaldi_conf returns).

        Every option must be known; nothing is ignored silently.  Errors name ``path`` and,
        where ``lines`` maps option names to line numbers, the line.
        """
        names = cls.kaldi_names()
        values = {}
        for name, text in opts.items():
            where = {"path": path, "line": (lines or {}).get(name), "key": name}
            if name in _DEFAULT_ONLY:
                _check_default_only(name, text, where)
            elif name not in names:
                raise InputError(f"unknown {cls.kind} option --{name}; valid options: "
                                 + " ".join("--" + n for n in sorted(names)), **where)
            else:
                like = cls.__dataclass_fields__[names[name]].default
                try:
                    values[names[name]] = _parse_value(text, like)
                except ValueError as e:
                    raise InputError(f"bad value {text!r} for --{name}: {e}", **where) from None
        try:
            return cls(**values)
        except InputError as e:
            raise InputError(e.message, path=path) from None

    @classmethod
    def from_file(cls, path: str | os.PathLike):
        """Read a Kaldi option file such as ``conf/fbank.conf``."""
        entries = _read_conf_lines(path)
        opts = {name: value for _, name, value in entries}
        lines = {name: number for number, name, _ in entries}
        return cls.from_kaldi_options(opts, path=path, lines=lines)

    def to_kaldi_options(self) -> dict[str, str]:
        """All options as Kaldi option strings; ``from_kaldi_options`` inverts it."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.metadata["kaldi"]] = str(value).lower() if isinstance(value, bool) else str(
                value)
        return out

    def to_kaldi_conf(self) -> str:
        """The full config as a Kaldi option file, to keep next to the features."""
        return "".join(f"--{k}={v}\n" for k, v in self.to_kaldi_options().items())

    # Derived quantities, computed as Kaldi's FrameExtractionOptions / MelBanks do.

    @property
    def frame_shift(self) -> float:
        """Frame shift in seconds (what Kaldi writes to ``data/<set>/frame_shift``)."""
        return self.frame_shift_ms / 1000.0

    @property
    def window_shift(self) -> int:
        """Frame shift in samples (Kaldi's ``WindowShift()``, truncated)."""
        return int(self.sample_frequency * 0.001 * self.frame_shift_ms)

    @property
    def window_size(self) -> int:
        """Frame length in samples (Kaldi's ``WindowSize()``, truncated)."""
        return int(self.sample_frequency * 0.001 * self.frame_length_ms)

    @property
    def padded_window_size(self) -> int:
        """FFT size: the frame length, rounded up to a power of two if asked."""
        n = self.window_size
        return 1 << (n - 1).bit_length() if self.round_to_power_of_two else n

    @property
    def mel_high_freq(self) -> float:
        """The upper mel edge in Hz; ``high-freq <= 0`` is an offset from Nyquist."""
        nyquist = 0.5 * self.sample_frequency
        return self.high_freq if self.high_freq > 0 else nyquist + self.high_freq

    def num_frames(self, num_samples: int) -> int:
        """Frames Kaldi makes from ``num_samples`` samples (``NumFrames``, flush=true)."""
        shift, size = self.window_shift, self.window_size
        if self.snip_edges:
            return 0 if num_samples < size else 1 + (num_samples - size) // shift
        return (num_samples + shift // 2) // shift

    def _knf_frame_opts(self) -> knf.FrameExtractionOptions:
        """Framing options for kaldi-native-fbank; dither is always 0 (we dither ourselves)."""
        return knf.FrameExtractionOptions(
            samp_freq=self.sample_frequency, frame_shift_ms=self.frame_shift_ms,
            frame_length_ms=self.frame_length_ms, dither=0.0,
            preemph_coeff=self.preemphasis_coefficient, remove_dc_offset=self.remove_dc_offset,
            window_type=self.window_type, round_to_power_of_two=self.round_to_power_of_two,
            blackman_coeff=self.blackman_coeff, snip_edges=self.snip_edges)

    def _knf_mel_opts(self) -> knf.MelBanksOptions:
        """Kaldi (HTK mel scale, unnormalised triangles) mel banks, never librosa's.

        knf 1.23 adds ``is_librosa``, ``norm`` and ``use_slaney_mel_scale`` (default
        "slaney" and True); they only act when ``is_librosa`` is set, but we set them all.
        """
        return knf.MelBanksOptions(
            num_bins=self.num_mel_bins, low_freq=self.low_freq, high_freq=self.high_freq,
            vtln_low=self.vtln_low, vtln_high=self.vtln_high, debug_mel=False,
            htk_mode=False, is_librosa=False, norm="", use_slaney_mel_scale=False,
            floor_to_int_bin=False)


def _check_default_only(name: str, text: str, where: dict) -> None:
    """Accept an unimplemented Kaldi option only when it is set to its no-op default."""
    default = _DEFAULT_ONLY[name]
    try:
        ok = _parse_value(text, default) == default
    except ValueError:
        ok = False
    if not ok:
        raise InputError(f"--{name}={text} is not supported by speechssl (only its Kaldi "
                         f"default {str(default).lower()})", **where)


@dataclasses.dataclass(frozen=True)
class FbankConfig(_FeatureConfig):
    """Log-mel filterbank options of Kaldi's ``compute-fbank-feats``."""

    kind: ClassVar[str] = "fbank"

    use_log_fbank: bool = _opt(True, "use-log-fbank", "log of the mel energies")
    use_power: bool = _opt(True, "use-power", "power spectrum (false: magnitude)")

    @property
    def dim(self) -> int:
        """Feature dimension: the mel bins, plus one for the energy if used."""
        return self.num_mel_bins + int(self.use_energy)

    def to_knf(self) -> knf.FbankOptions:
        """kaldi-native-fbank options with every field set (and dither 0)."""
        return knf.FbankOptions(
            frame_opts=self._knf_frame_opts(), mel_opts=self._knf_mel_opts(),
            use_energy=self.use_energy, energy_floor=self.energy_floor,
            raw_energy=self.raw_energy, htk_compat=self.htk_compat,
            use_log_fbank=self.use_log_fbank, use_log_floor=True, eps=FLOAT32_EPS,
            use_power=self.use_power)


@dataclasses.dataclass(frozen=True)
class MfccConfig(_FeatureConfig):
    """MFCC options of Kaldi's ``compute-mfcc-feats`` (energy replaces C0 by default)."""

    kind: ClassVar[str] = "mfcc"

    use_energy: bool = _opt(True, "use-energy", "replace C0 by the log energy")
    num_ceps: int = _opt(13, "num-ceps", "number of cepstra, C0 included")
    cepstral_lifter: float = _opt(22.0, "cepstral-lifter", "lifter coefficient (0: none)")

    def _problems(self) -> list[str]:
        out = super()._problems()
        if not 1 <= self.num_ceps <= self.num_mel_bins:
            out.append(f"num-ceps {self.num_ceps} must be in 1..num-mel-bins")
        return out

    @property
    def dim(self) -> int:
        """Feature dimension: the number of cepstra."""
        return self.num_ceps

    def to_knf(self) -> knf.MfccOptions:
        """kaldi-native-fbank options with every field set (and dither 0)."""
        return knf.MfccOptions(
            frame_opts=self._knf_frame_opts(), mel_opts=self._knf_mel_opts(),
            num_ceps=self.num_ceps, use_energy=self.use_energy,
            energy_floor=self.energy_floor, raw_energy=self.raw_energy,
            cepstral_lifter=self.cepstral_lifter, htk_compat=self.htk_compat)


FEATURE_CONFIGS: dict[str, type[_FeatureConfig]] = {"fbank": FbankConfig, "mfcc": MfccConfig}


def load_feature_config(kind: str, path: str | os.PathLike | None = None):
    """The config for ``kind`` ("fbank" or "mfcc") from a Kaldi option file, or defaults."""
    if kind not in FEATURE_CONFIGS:
        raise InputError(f"unknown feature kind {kind!r}; expected one of "
                         + ", ".join(FEATURE_CONFIGS))
    cls = FEATURE_CONFIGS[kind]
    return cls() if path is None else cls.from_file(path)
