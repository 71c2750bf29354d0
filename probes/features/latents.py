"""What SAE latents respond to: feature statistics, top contexts, logit effects, steering, and board-feature AUCs.

The pieces a local Neuronpedia needs, each a plain result: per-latent density and max activation over a
token sample (:func:`latent_stats`), the top-activating contexts (:func:`top_contexts`), the tokens a
latent's decoder direction promotes and suppresses through the unembedding (:func:`logit_effects`), the
latents active on a prompt (:func:`prompt_latents`), next-token distributions with a latent's direction
added (:func:`steer`), and for Othello-GPT, how well each board feature predicts each latent
(:func:`othello_latent_aucs`, Karvonen et al. 2024 / He et al. 2024 on larger board-game models).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from interp.errors import InvalidInput
from interp.model import Model
from learned.sae import SparseAutoencoder
from probes.features.splice import sae_site
from probes.probing.linear import evaluate, fit_logistic, split_indices
from tasks.othello import SQUARE_NAMES, othello_probe_set

BOARD_KINDS = ("empty", "mine", "theirs", "legal", "flipped")


# ----------------------------------------------------------------------------- latent statistics


@dataclass
class LatentStats:
    """Per-latent statistics over a token sample, and where each latent peaks."""
    density: np.ndarray  # [d_sae] share of tokens where the latent is active
    max_act: np.ndarray  # [d_sae]
    mean_act: np.ndarray  # [d_sae] mean over the tokens where it is active
    acts: np.ndarray  # [n_seq, pos, d_sae] float16 activations (for histograms and contexts)
    tokens: np.ndarray  # [n_seq, pos] token ids
    mask: np.ndarray  # [n_seq, pos] bool: real (non-padding) positions

    def table(self) -> Any:

        return pd.DataFrame({"latent": np.arange(len(self.density)), "density": self.density,
                             "max activation": self.max_act, "mean when active": self.mean_act})


@torch.no_grad()
def latent_acts(handle: Model, sae: SparseAutoencoder, tokens: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """SAE latent activations [n_seq, pos, d_sae] at the SAE's hook for tokens [n_seq, pos]."""
    out = []
    for start in range(0, tokens.shape[0], batch_size):
        x = handle.activations(tokens[start:start + batch_size], sae_site(handle, sae))  # [b, pos, d_in]
        out.append(sae.encode(x).cpu())
    return torch.cat(out)


def latent_stats(handle: Model, sae: SparseAutoencoder, tokens: torch.Tensor,
                 mask: torch.Tensor | None = None) -> LatentStats:
    """Density, max and mean-when-active of every latent over tokens [n_seq, pos] (``mask`` drops padding)."""
    acts = latent_acts(handle, sae, tokens)  # [n, pos, d_sae]
    m = torch.ones(tokens.shape, dtype=torch.bool) if mask is None else mask.to(torch.bool)
    flat = acts[m]  # [rows, d_sae]
    active = flat > 0
    count = active.sum(0).clamp_min(1)
    return LatentStats(density=active.float().mean(0).numpy(), max_act=flat.max(0).values.numpy(),
                       mean_act=(flat.sum(0) / count).numpy(), acts=acts.to(torch.float16).numpy(),
                       tokens=tokens.numpy(), mask=m.numpy())


@dataclass
class Context:
    seq: int
    pos: int
    activation: float
    tokens: list[str]  # the window's tokens as text
    acts: list[float]  # the latent's activation on each window token
    centre: int  # index of the peak token within the window


def top_contexts(stats: LatentStats, latent: int, tokenizer: Any, n: int = 8, window: int = 12) -> list[Context]:
    """The ``n`` tokens where ``latent`` peaks (at most one per sequence), each with ``window`` tokens before it."""
    a = stats.acts[..., latent].astype(np.float32) * stats.mask  # [n_seq, pos]
    best_pos = a.argmax(1)
    best = a[np.arange(a.shape[0]), best_pos]
    order = [i for i in np.argsort(-best, kind="stable")[:n] if best[i] > 0]
    out = []
    for s in order:
        p = int(best_pos[s])
        lo, hi = max(0, p - window), min(a.shape[1], p + 4)
        ids = stats.tokens[s, lo:hi].tolist()
        out.append(Context(int(s), p, float(best[s]), [tokenizer.decode([t]) for t in ids],
                           a[s, lo:hi].tolist(), p - lo))
    return out


def activation_histogram(stats: LatentStats, latent: int) -> np.ndarray:
    """The latent's non-zero activations (for a histogram)."""
    a = stats.acts[..., latent][stats.mask].astype(np.float32)
    return a[a > 0]


# ----------------------------------------------------------------------------- logit effects and steering


@dataclass
class LogitEffects:
    promoted: list[tuple[str, float]]
    suppressed: list[tuple[str, float]]
    values: np.ndarray  # [d_vocab] decoder direction @ W_U (centred)


def logit_effects(handle: Model, sae: SparseAutoencoder, latent: int, n: int = 10) -> LogitEffects:
    """Tokens the latent's unit decoder direction most promotes and suppresses through W_U (the direct path)."""
    _check_latent(sae, latent)
    w_u = handle.weights().W_U.to(torch.float32)  # [d_model, d_vocab]
    v = sae.decoder_directions[latent].detach() @ w_u  # [d_vocab]
    v = (v - v.mean()).numpy()
    order = np.argsort(-v, kind="stable")
    tok = handle.tokenizer
    return LogitEffects([(tok.decode([int(i)]), float(v[i])) for i in order[:n]],
                        [(tok.decode([int(i)]), float(v[i])) for i in order[::-1][:n]], v)


def tokens_promoting(effects_matrix: np.ndarray, token_id: int, n: int = 20) -> np.ndarray:
    """Latents whose decoder direction most promotes ``token_id`` (effects_matrix [d_sae, d_vocab])."""
    return np.argsort(-effects_matrix[:, token_id], kind="stable")[:n]


def logit_effect_matrix(handle: Model, sae: SparseAutoencoder) -> np.ndarray:
    """[d_sae, d_vocab] every latent's unit decoder direction through W_U (centred per latent)."""
    w_u = handle.weights().W_U.to(torch.float32)
    m = sae.decoder_directions.detach() @ w_u
    return (m - m.mean(1, keepdim=True)).numpy()


def search_latents_by_token(stats: LatentStats, token_id: int, n: int = 20) -> list[tuple[int, float]]:
    """Latents with the highest mean activation on occurrences of ``token_id`` in the sample: (latent, mean)."""
    hit = (stats.tokens == token_id) & stats.mask
    if not hit.any():
        return []
    mean = stats.acts[hit].astype(np.float32).mean(0)  # [d_sae]
    order = np.argsort(-mean, kind="stable")[:n]
    return [(int(i), float(mean[i])) for i in order if mean[i] > 0]


@torch.no_grad()
def prompt_latents(handle: Model, sae: SparseAutoencoder, tokens: torch.Tensor,
                   n: int = 10) -> list[list[tuple[int, float]]]:
    """For tokens [pos] of one prompt: per position the ``n`` most active latents as (latent, activation)."""
    acts = latent_acts(handle, sae, tokens[None])[0]  # [pos, d_sae]
    top = acts.topk(min(n, acts.shape[-1]), dim=-1)
    return [[(int(i), float(v)) for i, v in zip(ix, vs) if v > 0] for ix, vs in zip(top.indices, top.values)]


@dataclass
class SteerResult:
    tokens: list[str]
    p_before: np.ndarray  # [n] probabilities of the shown tokens without steering
    p_after: np.ndarray  # [n] with the latent's direction added
    kl: float  # KL(before || after) of the whole next-token distribution


@torch.no_grad()
def steer(handle: Model, sae: SparseAutoencoder, tokens: torch.Tensor, latent: int, scale: float,
          n: int = 10) -> SteerResult:
    """Next-token distribution at the last position of tokens [pos] with ``scale`` x the latent's unit decoder
    direction added at every position of the SAE's hook, against the plain one; shows the top tokens of both."""
    _check_latent(sae, latent)
    direction = sae.decoder_directions[latent].detach()  # [d_in]

    def add(act: torch.Tensor) -> torch.Tensor:
        return act + scale * direction.to(act.dtype).to(act.device)

    tok = tokens[None].to(handle.device)
    before = handle.logits(tok)[0, -1].float().log_softmax(-1)
    after = handle.run(tok, edit={sae_site(handle, sae): add}).logits[0, -1].float().log_softmax(-1)
    ids = torch.unique(torch.cat([before.topk(n).indices, after.topk(n).indices]))
    ids = ids[torch.argsort(-(after[ids].exp() - before[ids].exp()).abs())][:n]
    kl = float((before.exp() * (before - after)).sum())
    return SteerResult([handle.tokenizer.decode([int(i)]) for i in ids], before[ids].exp().numpy(),
                       after[ids].exp().numpy(), kl)


def _check_latent(sae: SparseAutoencoder, latent: int) -> None:
    if not isinstance(latent, (int, np.integer)) or not 0 <= int(latent) < sae.cfg.d_sae:
        raise InvalidInput(f"Latent {latent} does not exist: this SAE has latents 0..{sae.cfg.d_sae - 1}.")


# ----------------------------------------------------------------------------- Othello board features


def auc_matrix(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """ROC AUC of every score column for every binary label column: scores [rows, a], labels [rows, b] -> [a, b].

    Mann-Whitney with average ranks for ties (many latents are exactly 0 on most rows). A label column that is
    all one class gets NaN.
    """
    n = scores.shape[0]
    order = scores.argsort(0)
    ranks = torch.empty_like(scores, dtype=torch.float64)
    sorted_scores = scores.gather(0, order)
    pos = torch.arange(1, n + 1, dtype=torch.float64)[:, None].expand_as(sorted_scores).contiguous()
    for j in range(scores.shape[1]):  # average ranks over ties, column by column
        s = sorted_scores[:, j]
        _, inverse, counts = torch.unique_consecutive(s, return_inverse=True, return_counts=True)
        ends = counts.cumsum(0).to(torch.float64)
        avg = ends - (counts.to(torch.float64) - 1) / 2
        pos[:, j] = avg[inverse]
    ranks.scatter_(0, order, pos)
    y = labels.to(torch.float64)
    n_pos = y.sum(0)  # [b]
    n_neg = n - n_pos
    rank_sum = ranks.t() @ y  # [a, b]
    auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    auc[:, (n_pos == 0) | (n_neg == 0)] = float("nan")
    return auc


@dataclass
class BoardAUCs:
    """Best board feature per latent: ``best_auc`` [d_sae], ``best_feature`` names, and alive latents."""
    best_auc: np.ndarray
    best_feature: list[str]
    alive: np.ndarray  # [d_sae] bool: fired at least once on the sample
    square_auc: np.ndarray  # [d_sae, 3, 64] AUC of each (empty, mine, theirs) state of each square
    probe_accuracy: float | None = None  # a linear probe's board-state accuracy on the same activations
    best_precision: np.ndarray | None = None  # [d_sae] max over features (base rate <= 50%) of P(feature | active)

    def share_at(self, threshold: float, alive_only: bool = False) -> float:
        ok = np.nan_to_num(self.best_auc, nan=0.0) >= threshold
        if alive_only:
            return float(ok[self.alive].mean()) if self.alive.any() else 0.0
        return float(ok.mean())

    def share_by_kind(self, threshold: float) -> dict[str, float]:
        ok = np.nan_to_num(self.best_auc, nan=0.0) >= threshold
        kinds = np.array([f.split(" ")[0] for f in self.best_feature])
        return {k: float((ok & (kinds == k)).mean()) for k in BOARD_KINDS}

    def markdown(self, threshold: float) -> str:
        by = self.share_by_kind(threshold)
        lines = [f"\n## Board features (Othello)\n\nShare of latents whose activation one board feature predicts with "
                 f"AUC >= {threshold}: **{self.share_at(threshold):.1%}** of all latents, "
                 f"{self.share_at(threshold, alive_only=True):.1%} of the {int(self.alive.sum())} that fire.\n",
                 "| best feature kind | share of latents |", "|---|---|"]
        lines += [f"| {k} | {v:.1%} |" for k, v in by.items()]
        if self.best_precision is not None:
            prec = np.nan_to_num(self.best_precision, nan=0.0) >= threshold
            lines.append(f"\nThe other direction: when a latent fires, one board feature (of those present on at most "
                         f"half the positions) holds at least {threshold:.0%} of the time for "
                         f"**{float(prec.mean()):.1%}** of latents (the latent is a precise detector of part of "
                         "the feature rather than all of it).")
        if self.probe_accuracy is not None:
            lines.append(f"\nA linear probe (relative board state, 3 classes per square) on the same activations: "
                         f"{self.probe_accuracy:.1%} held-out accuracy.")
        return "\n".join(lines) + "\n"


def othello_board_features(n_games: int, seed: int = 0) -> tuple[Any, dict[str, np.ndarray]]:
    """Probe set and binary board features per row: ``"<kind> <square>"`` -> [rows] bool for kind in BOARD_KINDS."""
    ps = othello_probe_set(n_games, seed=seed)
    absolute = ps.games.absolute()  # [games, 60, 64]
    prev = np.concatenate([np.zeros_like(absolute[:, :1]), absolute[:, :-1]], axis=1)
    flipped = (prev != 0) & (absolute != prev)  # discs that changed colour with this move
    legal = ps.games.legal()
    feats: dict[str, np.ndarray] = {}
    for i, kind in enumerate(("empty", "mine", "theirs")):
        for sq in range(64):
            feats[f"{kind} {SQUARE_NAMES[sq]}"] = ps.relative[:, sq] == i
    for kind, arr in (("legal", legal), ("flipped", flipped)):
        rows = arr[ps.game, ps.move]  # [rows, 64]
        for sq in range(64):
            feats[f"{kind} {SQUARE_NAMES[sq]}"] = rows[:, sq]
    return ps, feats


def othello_latent_aucs(handle: Model, sae: SparseAutoencoder, n_games: int = 100, seed: int = 0,
                        with_probe: bool = True) -> BoardAUCs:
    """For each latent, the board feature (square empty/mine/theirs, legal move, just flipped) whose presence best
    predicts its activation, by ROC AUC over the positions of ``n_games`` fresh games."""
    ps, feats = othello_board_features(n_games, seed=seed)
    x = handle.activations(torch.from_numpy(ps.tokens), sae_site(handle, sae))  # [games, pos, d_in]
    rows_x = x[torch.from_numpy(ps.game), torch.from_numpy(ps.move)]  # [rows, d_in]
    with torch.no_grad():
        acts = sae.encode(rows_x)  # [rows, d_sae]
    names = list(feats)
    labels = torch.from_numpy(np.stack([feats[k] for k in names], 1))  # [rows, n_feat]
    auc = auc_matrix(acts.to(torch.float64), labels).numpy()  # [d_sae, n_feat]
    alive = (acts > 0).any(0).numpy()
    auc[~alive] = np.nan
    filled = np.nan_to_num(auc, nan=-1.0)
    best = filled.argmax(1)
    probe_acc = _board_probe_accuracy(rows_x, ps) if with_probe else None
    active = (acts > 0).to(torch.float64)  # [rows, d_sae]
    lab = labels.to(torch.float64)
    precision = (active.t() @ lab) / active.sum(0).clamp_min(1)[:, None]  # [d_sae, n_feat] P(feature | active)
    precision[:, lab.mean(0) > 0.5] = 0.0  # a feature present almost everywhere says nothing
    best_prec = np.where(alive, precision.max(1).values.numpy(), np.nan)
    return BoardAUCs(np.where(alive, filled[np.arange(len(best)), best], np.nan), [names[i] for i in best], alive,
                     auc[:, :192].reshape(-1, 3, 64), probe_acc, best_prec)


def _board_probe_accuracy(x: torch.Tensor, ps: Any) -> float:
    """Held-out accuracy of linear probes (relative encoding) on the activations the SAE reads, split by game."""
    split = split_indices(len(ps.game), seed=0, groups=ps.game)
    probe = fit_logistic(x.numpy(), ps.relative, split, n_classes=3)
    return float(evaluate(probe, x.numpy(), ps.relative, split.test, n_classes=3)["accuracy"])


def board_correlations(handle: Model, sae: SparseAutoencoder, n_games: int = 50, seed: int = 0) -> np.ndarray:
    """[d_sae, 3, 64] Pearson correlation of every latent with each square being empty / mine / theirs (relative
    to the player about to move) over the positions of ``n_games`` fresh games."""
    ps = othello_probe_set(n_games, seed=seed)
    x = handle.activations(torch.from_numpy(ps.tokens), sae_site(handle, sae))  # [games, pos, d_in]
    with torch.no_grad():
        acts = sae.encode(x[torch.from_numpy(ps.game), torch.from_numpy(ps.move)]).to(torch.float64)  # [rows, d_sae]
    onehot = torch.from_numpy(np.stack([ps.relative == i for i in range(3)], 1).reshape(len(ps), -1)).to(torch.float64)
    a = acts - acts.mean(0)
    b = onehot - onehot.mean(0)
    cov = a.t() @ b / len(ps)  # [d_sae, 192]
    corr = cov / (a.std(0, unbiased=False)[:, None] * b.std(0, unbiased=False)[None]).clamp_min(1e-12)
    return corr.reshape(-1, 3, 64).numpy()
