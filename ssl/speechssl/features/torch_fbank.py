"""Kaldi log-mel fbank in torch, for batched on-the-fly features on any device.

Follows Kaldi's ``compute-fbank-feats`` step by step (``feat/feature-window.cc``,
``feat/feature-fbank.cc``, ``feat/mel-computations.cc``): framing (``snip_edges`` true, or
false with the signal reflected at both ends), per-frame dither, DC removal, raw energy,
pre-emphasis (the first sample is pre-emphasised with itself), window, zero padding to the
FFT size, power spectrum, HTK-mel triangular banks, log floored at float32 epsilon.

It matches kaldi-native-fbank to 2e-4 in every mel bin within 60 dB of its frame's loudest
bin.  Further down, float32 rounding moves both implementations by up to ~1e-2 (against
float64); ``TorchFbank(config).double()`` computes in float64 where that matters.  See
tests/test_torch_fbank.py.

Deviations: VTLN warping is not supported (``vtln-low``/``vtln-high`` are only used with a
warp factor, which speechssl never applies).  The dither is Kaldi's per-frame noise, drawn
from ``torch.randn`` rather than from Kaldi's generator.
"""

from __future__ import annotations

import math

import torch

from speechssl.features.kaldi_compute import feature_window, kaldi_mel_banks
from speechssl.features.options import FLOAT32_EPS, FbankConfig


def reflect_indices(start: int, stop: int, num_samples: int) -> torch.Tensor:
    """Sample indices ``start..stop-1``, reflected into ``[0, num_samples)`` as Kaldi does.

    Kaldi's ExtractWindow maps -1 -> 0, -2 -> 1 and N -> N-1, repeating for tiny inputs.
    """
    idx = torch.arange(start, stop)
    while bool(((idx < 0) | (idx >= num_samples)).any()):
        idx = torch.where(idx < 0, -idx - 1, idx)
        idx = torch.where(idx >= num_samples, 2 * num_samples - 1 - idx, idx)
    return idx


class TorchFbank(torch.nn.Module):
    """Batched Kaldi fbank: ``(B, N)`` waveforms in int16 scale -> ``(B, T, D)`` features.

    A 1-D ``(N,)`` input gives ``(T, D)``.  All waveforms of a batch share one length; pad
    them and trim the frames (``config.num_frames(length)``) if they differ.  The window
    and the mel banks are buffers (not saved in state dicts): ``.to(device)`` moves them.
    """

    def __init__(self, config: FbankConfig):
        super().__init__()
        if config.kind != "fbank":
            raise TypeError(f"TorchFbank needs an FbankConfig, got {type(config).__name__}")
        self.config = config
        window = torch.tensor(feature_window(config), dtype=torch.float32)
        banks = torch.tensor(kaldi_mel_banks(config), dtype=torch.float32)
        self.register_buffer("window", window, persistent=False)  # (L,)
        self.register_buffer("mel_banks", banks, persistent=False)  # (K + 1, M)

    @property
    def dim(self) -> int:
        return self.config.dim

    def forward(
        self,
        waveform: torch.Tensor,
        dither: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Features of ``waveform`` ``(B, N)`` or ``(N,)``; dither defaults to the config's."""
        unbatched = waveform.dim() == 1
        wave = waveform.reshape(1, -1) if unbatched else waveform
        frames = self._frames(wave.to(self.window.dtype))  # (B, T, L)
        dither = self.config.dither if dither is None else dither
        if dither > 0:
            noise = torch.randn(frames.shape, generator=generator, device=frames.device,
                                dtype=frames.dtype)
            frames = frames + dither * noise
        feats = self._frames_to_fbank(frames)  # (B, T, D)
        return feats[0] if unbatched else feats

    def _frames(self, wave: torch.Tensor) -> torch.Tensor:
        """Cut ``(B, N)`` into Kaldi frames ``(B, T, L)``."""
        cfg = self.config
        size, shift, n = cfg.window_size, cfg.window_shift, wave.shape[-1]
        num_frames = cfg.num_frames(n)
        if num_frames == 0:
            raise ValueError(f"{n} samples are too short for one frame of {size} samples")
        if not cfg.snip_edges:
            start = shift // 2 - size // 2  # Kaldi's FirstSampleOfFrame(0)
            stop = start + shift * (num_frames - 1) + size
            wave = wave[:, reflect_indices(start, stop, n).to(wave.device)]
        return wave.unfold(-1, size, shift)[:, :num_frames]

    def _frames_to_fbank(self, frames: torch.Tensor) -> torch.Tensor:
        """Kaldi's ProcessWindow and FbankComputer::Compute on ``(B, T, L)`` frames."""
        cfg = self.config
        if cfg.remove_dc_offset:
            frames = frames - frames.mean(dim=-1, keepdim=True)
        energy = _log_energy(frames) if cfg.use_energy and cfg.raw_energy else None  # (B, T)
        if cfg.preemphasis_coefficient != 0.0:
            frames = _preemphasize(frames, cfg.preemphasis_coefficient)
        frames = frames * self.window
        if cfg.use_energy and not cfg.raw_energy:
            energy = _log_energy(frames)
        spectrum = torch.fft.rfft(frames, n=cfg.padded_window_size)  # (B, T, K + 1)
        power = spectrum.real.square() + spectrum.imag.square()
        if not cfg.use_power:
            power = power.sqrt()
        mel = torch.matmul(power, self.mel_banks)  # (B, T, M)
        if cfg.use_log_fbank:
            mel = mel.clamp_min(FLOAT32_EPS).log()
        return mel if energy is None else self._add_energy(mel, energy)

    def _add_energy(self, mel: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        """Put the (floored) log energy first, or last with ``htk_compat``: ``(B, T, M+1)``."""
        floor = self.config.energy_floor
        if floor > 0.0:
            energy = energy.clamp_min(math.log(floor))
        parts = [mel, energy[..., None]] if self.config.htk_compat else [energy[..., None], mel]
        return torch.cat(parts, dim=-1)


def _log_energy(frames: torch.Tensor) -> torch.Tensor:
    """``log(max(sum x^2, float eps))`` per frame: ``(B, T, L) -> (B, T)``."""
    return frames.square().sum(dim=-1).clamp_min(FLOAT32_EPS).log()


def _preemphasize(frames: torch.Tensor, coeff: float) -> torch.Tensor:
    """Kaldi's pre-emphasis: ``x[i] -= c x[i-1]`` and ``x[0] -= c x[0]``, per frame."""
    if frames.requires_grad:
        first = frames[..., :1] * (1.0 - coeff)
        rest = frames[..., 1:] - coeff * frames[..., :-1]
        return torch.cat([first, rest], dim=-1)
    out = torch.empty_like(frames)  # written in place: one pass, no concatenation
    torch.mul(frames[..., :1], 1.0 - coeff, out=out[..., :1])
    torch.sub(frames[..., 1:], frames[..., :-1], alpha=coeff, out=out[..., 1:])
    return out
