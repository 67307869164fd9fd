"""VICReg: the loss terms against brute-force loops, the two-process gather against one
process on the full batch (values and DDP-averaged gradients), the config, represent(), and
a loss that falls on synthetic speakers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from speechssl.data.batch import ViewBatch
from speechssl.errors import InputError
from speechssl.models.vicreg import (
    VICReg,
    VICRegConfig,
    covariance_term,
    invariance_term,
    variance_term,
    vicreg_terms,
)
from speechssl.train.checkpoint import load_tensors
from speechssl.typed_config import from_dict


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread, above all beside other CPU-heavy jobs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY = {"encoder": "tdnn", "projector_dims": [32, 32, 16],
        "tdnn": {"channels": [16, 16, 16, 16, 32], "embedding_dim": 24}}


# ---------------------------------------------------------------- brute-force references


def brute_invariance(za: list[list[float]], zb: list[list[float]]) -> float:
    n, d = len(za), len(za[0])
    return sum((za[i][j] - zb[i][j]) ** 2 for i in range(n) for j in range(d)) / (n * d)


def column_mean(z: list[list[float]], j: int) -> float:
    return sum(row[j] for row in z) / len(z)


def brute_variance(z: list[list[float]], gamma: float = 1.0, eps: float = 1e-4) -> float:
    n, d = len(z), len(z[0])
    total = 0.0
    for j in range(d):
        mean = column_mean(z, j)
        var = 0.0
        for i in range(n):
            var += (z[i][j] - mean) ** 2
        var /= n - 1
        total += max(0.0, gamma - math.sqrt(var + eps))
    return total / d


def brute_covariance(z: list[list[float]]) -> float:
    n, d = len(z), len(z[0])
    means = [column_mean(z, j) for j in range(d)]
    total = 0.0
    for a in range(d):
        for b in range(d):
            if a == b:
                continue
            cov = sum((z[i][a] - means[a]) * (z[i][b] - means[b]) for i in range(n)) / (n - 1)
            total += cov ** 2
    return total / d


def projections(n: int = 7, d: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Correlated columns with standard deviations on both sides of gamma = 1."""
    g = torch.Generator().manual_seed(seed)
    scale = torch.tensor([0.2, 0.6, 0.9, 1.5, 3.0], dtype=torch.float64)[:d]
    mix = torch.eye(d, dtype=torch.float64) + 0.5 * torch.randn(d, d, generator=g,
                                                                dtype=torch.float64)
    za = (torch.randn(n, d, generator=g, dtype=torch.float64) @ mix) * scale + 2
    zb = za + 0.3 * torch.randn(n, d, generator=g, dtype=torch.float64)
    return za, zb


def assert_close(got: float, want: float, what: str, tol: float = 1e-10) -> None:
    assert abs(got - want) <= tol * max(1.0, abs(want)), f"{what}: {got} vs {want}"


def test_terms_match_brute_force_loops():
    za, zb = projections()
    a, b = za.tolist(), zb.tolist()
    assert_close(float(invariance_term(za, zb)), brute_invariance(a, b), "invariance")
    for z, zl, view in ((za, a, "a"), (zb, b, "b")):
        assert_close(float(variance_term(z)), brute_variance(zl), f"variance {view}")
        assert_close(float(variance_term(z, 2.0, 1e-2)), brute_variance(zl, 2.0, 1e-2),
                     f"variance {view}, gamma 2")
        assert_close(float(covariance_term(z)), brute_covariance(zl), f"covariance {view}")
    assert 0 < brute_variance(a) < 1, "the hinge should be active on some dimensions only"


def test_total_is_the_weighted_sum_of_both_views():
    raw = dict(TINY, inv_weight=2.0, var_weight=3.0, cov_weight=0.5)
    torch.manual_seed(0)
    model = VICReg(from_dict(VICRegConfig, raw), 20).double()
    batch = view_batch(*speakers(6, seed=4, dtype=torch.float64), frames=30)
    terms = model.loss(batch)
    a = model.project(batch.view_a, batch.lengths).tolist()
    b = model.project(batch.view_b, batch.lengths).tolist()
    want = {"invariance": brute_invariance(a, b),
            "variance": brute_variance(a) + brute_variance(b),
            "covariance": brute_covariance(a) + brute_covariance(b)}
    for name, value in want.items():
        assert_close(float(terms[name].detach()), value, name, 1e-8)
    total = 2.0 * want["invariance"] + 3.0 * want["variance"] + 0.5 * want["covariance"]
    assert_close(float(terms["loss"].detach()), total, "loss", 1e-8)


# ---------------------------------------------------------------- two processes (gloo)


def weighted(terms: dict[str, torch.Tensor]) -> torch.Tensor:
    return 25 * terms["invariance"] + 25 * terms["variance"] + terms["covariance"]


def run_case(head: nn.Linear, xa: torch.Tensor, xb: torch.Tensor, full_loss: bool):
    """Terms and gradients of ``head`` for one batch (the local one under DDP)."""
    head.zero_grad()
    terms = vicreg_terms(head(xa), head(xb))
    loss = weighted(terms) if full_loss else terms["variance"] + terms["covariance"]
    loss.backward()
    grads = [p.grad.clone() for p in head.parameters()]
    return {k: v.detach() for k, v in terms.items()}, grads


def gather_worker(rank: int, init_file: str, out_dir: str, xa, xb, cases) -> None:
    """One of two processes: its slice of the batch; gradients averaged as DDP does."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=2)
    try:
        results = []
        for split, full_loss in cases:
            lo, hi = (0, split) if rank == 0 else (split, xa.shape[0])
            torch.manual_seed(0)
            head = nn.Linear(xa.shape[1], 5).double()
            terms, grads = run_case(head, xa[lo:hi], xb[lo:hi], full_loss)
            for g in grads:
                dist.all_reduce(g)
                g /= 2
            results.append((terms, grads))
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_gather_on_two_processes_equals_one_process(tmp_path):
    g = torch.Generator().manual_seed(5)
    xa = torch.randn(8, 6, generator=g, dtype=torch.float64)
    xb = xa + 0.5 * torch.randn(8, 6, generator=g, dtype=torch.float64)
    # (rows on rank 0, whole loss?): equal halves with the whole loss; unequal batches with
    # the batch-statistics terms only (the local invariance mean is then weighted per rank)
    cases = [(4, True), (3, False)]
    mp.spawn(gather_worker, args=(str(tmp_path / "init"), str(tmp_path), xa, xb, cases),
             nprocs=2, join=True)
    ranks = [load_tensors(tmp_path / f"rank{r}.pt") for r in range(2)]
    for c, (_, full_loss) in enumerate(cases):
        torch.manual_seed(0)
        head = nn.Linear(6, 5).double()
        want_terms, want_grads = run_case(head, xa, xb, full_loss)
        for r, results in enumerate(ranks):
            terms, grads = results[c]
            for name in ("variance", "covariance"):
                assert_close(float(terms[name]), float(want_terms[name]),
                             f"case {c} rank {r} {name}")
            for i, (got, want) in enumerate(zip(grads, want_grads, strict=True)):
                diff = (got - want).abs().max().item()
                assert diff < 1e-10, f"case {c} rank {r} parameter {i}: max diff {diff:.3g}"
    local = [float(ranks[r][0][0]["invariance"]) for r in range(2)]
    with torch.no_grad():
        want = float(invariance_term(head(xa), head(xb)))
    assert_close(sum(local) / 2, want, "mean invariance")


# ---------------------------------------------------------------- the model


def view_batch(g: torch.Generator, mix: torch.Tensor, frames: int) -> ViewBatch:
    """Two views of each synthetic "speaker" n: its frames lie in its own 3-d subspace of
    the D feature dims, spanned by ``mix[n]`` (3, D), so it survives the per-utterance
    instance norm; the views differ in their frames and noise."""
    n, rank, dim = mix.shape

    def view() -> torch.Tensor:
        u = torch.randn(n, frames, rank, generator=g, dtype=mix.dtype)     # (N, T, 3)
        noise = 0.3 * torch.randn(n, frames, dim, generator=g, dtype=mix.dtype)
        return u @ mix + noise                                              # (N, T, D)

    return ViewBatch(view(), view(), torch.full((n,), frames), [f"u{i}" for i in range(n)])


def speakers(n: int, dim: int = 20, seed: int = 0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return g, torch.randn(n, 3, dim, generator=g, dtype=dtype)              # (N, 3, D)


def view_matching_accuracy(model: VICReg, batch: ViewBatch) -> float:
    """How often an utterance's view-a embedding is closest (cosine) to its own view b."""
    with torch.no_grad():
        ea = F.normalize(model.represent(batch.view_a, batch.lengths), dim=1)  # (N, E)
        eb = F.normalize(model.represent(batch.view_b, batch.lengths), dim=1)
    return float(((ea @ eb.T).argmax(1) == torch.arange(len(ea))).float().mean())


def test_represent_is_the_encoder_output():
    torch.manual_seed(0)
    model = VICReg(from_dict(VICRegConfig, TINY), 20).eval()
    feats = torch.randn(3, 40, 20)
    lengths = torch.tensor([40, 25, 11])
    with torch.no_grad():
        emb = model.represent(feats, lengths)
        assert emb.shape == (3, 24) and model.representation_dim() == 24
        assert torch.equal(emb, model.encoder(feats, lengths))
    with pytest.raises(InputError, match="layer must be unset"):
        model.represent(feats, lengths, layer=2)


def test_loss_falls_on_synthetic_speakers():
    g, mix = speakers(32)
    torch.manual_seed(0)
    model = VICReg(from_dict(VICRegConfig, TINY), 20)
    untrained = view_matching_accuracy(model.eval(), view_batch(g, mix, 30))
    opt = torch.optim.Adam(model.train().parameters(), lr=1e-2)
    history = []
    for _ in range(50):
        terms = model.loss(view_batch(g, mix, 30))
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        history.append(float(terms["loss"].detach()))
    first, last = sum(history[:3]) / 3, sum(history[-5:]) / 5
    assert last < 0.5 * first, f"loss {first:.3f} -> {last:.3f}"
    trained = view_matching_accuracy(model.eval(), view_batch(g, mix, 30))
    assert trained > max(0.25, 2 * untrained), f"view matching {untrained} -> {trained}"


def test_one_utterance_is_refused():
    za, zb = projections(n=1)
    with pytest.raises(InputError, match="at least 2"):
        vicreg_terms(za, zb)


# ---------------------------------------------------------------- the config


def test_config_defaults_are_the_published_ones():
    c = VICRegConfig()
    assert (c.inv_weight, c.var_weight, c.cov_weight, c.gamma, c.eps) == (25, 25, 1, 1, 1e-4)
    assert c.projector_dims == [2048, 2048, 512]
    assert (c.encoder, c.resnet.channels, c.resnet.blocks, c.resnet.embedding_dim) == (
        "resnet", [32, 64, 128, 256], [3, 4, 6, 3], 1024)


def test_config_rejects_unknown_keys_and_encoders():
    with pytest.raises(InputError, match="unknown key 'model.cov_coeff'"):
        from_dict(VICRegConfig, {"cov_coeff": 0.1}, "model")
    with pytest.raises(InputError, match="unknown key 'model.resnet.chanels'"):
        from_dict(VICRegConfig, {"resnet": {"chanels": [8, 8, 8, 8]}}, "model")
    with pytest.raises(InputError, match="unknown encoder 'ecapa'; available: resnet, tdnn"):
        from_dict(VICRegConfig, {"encoder": "ecapa"}, "model")
