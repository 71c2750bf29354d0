"""What an SAE trains on: activation batches drawn per step, from a model's hook or from known synthetic features.

Every source is a function of (seed, step), so a resumed run sees the same batches as an uninterrupted one,
and nothing is held beyond one batch: a model source runs the model on a fresh seeded token batch each step
(``Model.activations``, stopping after the site) and never stores the dataset.

- :class:`ModelActivations`: any hook of any model; tokens from a text token stream (:func:`text_windows`) or
  Othello games (:func:`othello_games`); padding positions are dropped.
- :class:`SyntheticFeatures`: Sharkey, Braun & Millidge 2022's ground-truth setting: ``n_features`` random unit
  directions in ``d`` dimensions, each active with an exponentially decaying probability (mean ``mean_active``
  per sample), optionally correlated through a Gaussian copula, with uniform [0, 1] magnitudes.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from interp.errors import InvalidInput
from interp.model import Model
from interp.sites import Site
from learned.sae import SAEConfig
from tasks.corpus import encode_docs, stdlib_texts
from tasks.othello import is_othello_model, random_games

TokenFn = Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor | None]]  # -> tokens, keep mask


class ActivationSource(Protocol):
    """``batch(step)`` -> [rows, d_in] float32 activations, the same rows for the same (seed, step)."""
    d_in: int

    def batch(self, step: int) -> torch.Tensor: ...


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


# ----------------------------------------------------------------------------- model activations


def text_windows(tokens: np.ndarray, n: int, seq_len: int) -> TokenFn:
    """``n`` random windows of ``seq_len`` tokens of a 1-D token stream per step (every position kept)."""
    if len(tokens) <= seq_len:
        raise ValueError(f"the token stream ({len(tokens)} tokens) is shorter than one window ({seq_len})")

    def draw(step: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        starts = torch.randint(0, len(tokens) - seq_len, (n,), generator=gen).numpy()
        return torch.from_numpy(np.stack([tokens[s:s + seq_len] for s in starts]).astype(np.int64)), None

    return draw


def othello_games(n: int, seq_len: int = 59, seed_offset: int = 50_000_017) -> TokenFn:
    """``n`` fresh random Othello games per step (first ``seq_len`` moves); positions after a game ends dropped."""
    def draw(step: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        games = random_games(n, seed=int(torch.randint(0, 2**31 - 1, (1,), generator=gen)) + seed_offset)
        tok = torch.from_numpy(games.tokens()[:, :seq_len])  # [n, seq_len]
        return tok, tok != 0

    return draw


@dataclass
class ModelActivations:
    """Activations of ``hook`` on tokens drawn by ``tokens_fn`` each step, flattened to [rows, d_in]."""
    handle: Model
    hook: str
    tokens_fn: TokenFn
    seed: int = 0

    def __post_init__(self) -> None:
        probe = self.handle.activations(self.tokens_fn(0, step_generator(self.seed, 0))[0][:1, :4], self.hook)
        self.d_in = int(probe.shape[-1])

    def tokens(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.tokens_fn(step, step_generator(self.seed, step))

    def batch(self, step: int) -> torch.Tensor:
        tok, keep = self.tokens(step)
        act = self.handle.activations(tok, self.hook)  # [n, pos, d_in]
        act = act.flatten(0, -2) if keep is None else act[keep.to(act.device)]
        return act.cpu()  # [rows, d_in]


# ----------------------------------------------------------------------------- synthetic features


@dataclass
class SyntheticFeatures:
    """Known sparse features mixed into ``d`` dimensions (Sharkey et al. 2022); ``features`` [n_features, d]."""
    d: int = 256
    n_features: int = 512
    mean_active: float = 5.0
    decay: float = 0.99  # feature i is active with probability proportional to decay**i
    correlated: bool = True
    batch_size: int = 1024
    seed: int = 0

    def __post_init__(self) -> None:
        gen = torch.Generator().manual_seed(self.seed)
        f = torch.randn(self.n_features, self.d, generator=gen)
        self.features = f / f.norm(dim=1, keepdim=True)  # [n_features, d]
        p = self.decay ** torch.arange(self.n_features, dtype=torch.float64)
        self.probs = (p * self.mean_active / p.sum()).clamp(max=1.0)  # [n_features]
        self.d_in = self.d
        if self.correlated:  # a random correlation matrix from low-rank factors plus the identity
            factors = torch.randn(self.n_features, 16, generator=gen, dtype=torch.float64) * 0.5
            cov = factors @ factors.t() + torch.eye(self.n_features, dtype=torch.float64)
            sd = cov.diagonal().sqrt()
            self.chol = torch.linalg.cholesky(cov / sd[:, None] / sd[None, :])  # [n_features, n_features]
        else:
            self.chol = None

    def coefficients(self, step: int) -> torch.Tensor:
        """[batch, n_features] sparse non-negative coefficients of step ``step``'s samples."""
        gen = step_generator(self.seed, step)
        n = self.batch_size
        if self.chol is not None:  # Gaussian copula: correlated normals -> uniforms -> Bernoulli(p_i)
            z = torch.randn(n, self.n_features, generator=gen, dtype=torch.float64) @ self.chol.t()
            u = 0.5 * (1 + torch.erf(z / math.sqrt(2)))
        else:
            u = torch.rand(n, self.n_features, generator=gen, dtype=torch.float64)
        active = u < self.probs[None]
        mags = torch.rand(n, self.n_features, generator=gen)
        return torch.where(active, mags, torch.zeros_like(mags))

    def batch(self, step: int) -> torch.Tensor:
        return self.coefficients(step) @ self.features  # [batch, d]


# ----------------------------------------------------------------------------- one job: an SAE on a model's site


def model_sae_job(handle: Model, site: Site | str, *, batch_seqs: int, d_sae: int, text_tokens: np.ndarray | None,
                  text_seq: int, seed: int = 0) -> tuple[ModelActivations, SAEConfig]:
    """The activation source and the SAE config for training on ``site`` of ``handle``: games for an Othello-GPT
    (59 moves), else windows of ``text_tokens`` (``text_seq`` long, within the context). The CLI's train-sae and
    the Features page build their runs here, so both record the same context size and provenance."""
    site = handle.require(Site.parse(site))
    if is_othello_model(handle):
        tokens_fn, seq = othello_games(batch_seqs), 59
    else:
        if text_tokens is None:
            raise InvalidInput("A text model's SAE needs training text (text_tokens).")
        seq = min(text_seq, handle.info.n_ctx)
        tokens_fn = text_windows(text_tokens, batch_seqs, seq)
    source = ModelActivations(handle, str(site), tokens_fn, seed=seed)
    cfg = SAEConfig(d_in=source.d_in, d_sae=d_sae, hook_name=str(site),
                    hook_layer=-1 if site.layer is None else site.layer, model_name=handle.info.name, context_size=seq)
    return source, cfg


# ----------------------------------------------------------------------------- samples to inspect latents on


def sample_tokens(handle: Model, n_seq: int = 64, seq_len: int = 64, seed: int = 0) -> tuple[torch.Tensor,
                                                                                                   torch.Tensor]:
    """Held-out tokens [n_seq, seq_len] and a real-position mask to look at latents on: fresh random games for an
    Othello-GPT, else evenly spaced windows of the stdlib's held-out files in the model's tokenizer."""
    if is_othello_model(handle):
        tok = torch.from_numpy(random_games(n_seq, seed=88_000_003 + seed).tokens()[:, :min(seq_len, 59)])
        return tok, tok != 0

    seq_len = min(seq_len, handle.info.n_ctx)
    docs = stdlib_texts(heldout=True, max_chars=4 * n_seq * seq_len * 2)  # ~4 characters a token, 2x enough
    held = encode_docs(handle.tokenizer, docs).astype(np.int64)
    if len(held) <= seq_len:
        raise InvalidInput(f"The held-out text is shorter than one {seq_len}-token window for {handle.info.name}.")
    starts = np.linspace(0, len(held) - seq_len - 1, n_seq).astype(np.int64)
    tok = torch.from_numpy(np.stack([held[s:s + seq_len] for s in starts]))
    return tok, torch.ones_like(tok, dtype=torch.bool)
