"""grokking: modular addition's delayed generalisation and the Fourier algorithm behind it (Nanda et al. 2023).

Trains (or resumes, from a cache keyed by every training setting but ``epochs``) the paper's 1-layer model on
(a + b) mod p, then reads the algorithm off it: the key frequencies (from the MLP neurons' 2-D Fourier spectra),
the embedding's spectrum, and the paper's progress measures on every analysed snapshot: restricted loss (only
the key frequencies kept), excluded loss (them removed), the sum of squared weights, the embedding's Gini
sparsity, and the share of the logits' variance explained by cos(w(a + b - c)). Checks (a)-(e) of issue 15.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from experiments.core.registry import Check, Experiment, Finding, RunResult, Verdict, register
from experiments.core.settings import RunSettings, setting
from interp.errors import InvalidInput
from plots.grokking import (
    curves_figure,
    neuron_clusters_figure,
    progress_figure,
    spectrum_figure,
    spectrum_over_time_figure,
    weight_norm_figure,
)
from probes.fourier.modular import (
    embedding_freq_norms,
    freq_share,
    gini,
    key_frequencies,
    logit_key_share,
    n_freqs,
    neuron_clusters,
    restricted_and_excluded_loss,
    sum_sq_weights,
    top_frequencies,
    unembedding_freq_norms,
)
from probes.fourier.phases import GROK_ACC
from training.checkpoint import CheckpointCorrupt, atomic_write_json, read_json
from training.grokking import (
    GrokConfig,
    GrokHistory,
    all_pairs,
    cache_key,
    fast_forward,
    list_snapshots,
    load_snapshot,
    save_trained,
    split_indices,
    train_grokking,
    trainable_weights,
    weights_for_analysis,
)

PUBLISHED_KEY = [14, 35, 41, 42, 52]


@dataclass
class GrokkingConfig(RunSettings):
    """Defaults: the published setting (Nanda et al. 2023)."""

    p: int = setting(113, "the modulus p (odd, ideally prime; the paper: 113)", low=5, high=257)
    frac_train: float = setting(0.3, "share of the p*p pairs used for training (the paper: 0.3)", positive=True,
                                high=0.95)
    d_model: int = setting(128, "residual width (a multiple of n_heads)", low=8, high=1024)
    n_heads: int = setting(4, "attention heads", low=1, high=64)
    d_mlp: int = setting(512, "MLP neurons", low=8, high=8192)
    lr: float = setting(1e-3, "AdamW learning rate (constant)", positive=True, high=1.0)
    weight_decay: float = setting(1.0, "AdamW weight decay (the paper: 1.0; it is what makes the model grok)",
                                  low=0.0, high=100.0)
    beta2: float = setting(0.98, "AdamW beta2 (beta1 is 0.9)", positive=True, high=0.99999)
    epochs: int = setting(40_000, "full-batch epochs (the paper: 40k); a longer run resumes a shorter one",
                          low=1, high=1_000_000)
    data_seed: int = setting(598, "seed of the train/test split", low=0, high=2**32 - 1)
    log_every: int = setting(10, "epochs between test-set evaluations", low=1, high=100_000)
    snapshot_every: int = setting(100, "epochs between float16 weight snapshots (progress measures are drawn "
                                  "from them)", low=1, high=100_000)
    analyse_every: int = setting(100, "epochs between analysed snapshots (a multiple of snapshot_every)",
                                 low=1, high=100_000)
    threads: int = setting(1, "CPU threads for torch during the run (0: leave torch's default)", low=0, high=512)
    out_model: str = setting("", "write the trained model here (e.g. models/grokking-p113); only if it grokked",
                             path="out")

    def check(self) -> None:
        super().check()
        if self.p % 2 == 0:
            raise InvalidInput(f"Setting p={self.p} is invalid: the Fourier analysis needs an odd p (use a prime).")
        if self.d_model % self.n_heads:
            raise InvalidInput(f"Settings d_model={self.d_model} and n_heads={self.n_heads}: n_heads must divide "
                               "d_model.")
        if self.analyse_every % self.snapshot_every:
            raise InvalidInput(f"Setting analyse_every={self.analyse_every} must be a multiple of "
                               f"snapshot_every={self.snapshot_every}.")
        if round(self.frac_train * self.p * self.p) < 2 or round((1 - self.frac_train) * self.p * self.p) < 2:
            raise InvalidInput(f"Setting frac_train={self.frac_train} leaves no train or no test pairs at "
                               f"p={self.p}.")


def train_config(c: GrokkingConfig) -> GrokConfig:
    return GrokConfig(p=c.p, frac_train=c.frac_train, d_model=c.d_model, n_heads=c.n_heads, d_mlp=c.d_mlp,
                      lr=c.lr, weight_decay=c.weight_decay, beta2=c.beta2, epochs=c.epochs, seed=c.seed,
                      data_seed=c.data_seed, log_every=c.log_every, snapshot_every=c.snapshot_every)


# ----------------------------------------------------------------------------- analysis


@dataclass
class Data:
    tokens: torch.Tensor  # [p*p, 3]
    labels: torch.Tensor  # [p*p]
    masks: dict[str, torch.Tensor]  # "train" / "test" -> bool [p*p]


def pair_data(tc: GrokConfig) -> Data:
    tokens, labels = all_pairs(tc.p)
    tr, _ = split_indices(tc)
    train = torch.zeros(tc.p * tc.p, dtype=torch.bool)
    train[tr] = True
    return Data(tokens, labels, {"train": train, "test": ~train})


@torch.no_grad()
def measure(model: torch.nn.Module, tc: GrokConfig, key: list[int], data: Data) -> dict[str, Any]:
    """Every progress measure of one model state (losses in nats, shares in [0, 1])."""
    p = tc.p
    logits, acts = fast_forward(model, data.tokens)  # [p*p, vocab], [p*p, d_mlp]
    logits = logits[:, :p]
    w = weights_for_analysis(model, p)
    re = restricted_and_excluded_loss(logits, acts, w["W_out"], w["W_U"], data.labels, p, key, data.masks)
    norms = embedding_freq_norms(w["W_E"])
    return {"train_loss": re["train"].loss, "test_loss": re["test"].loss,
            "restricted_train": re["train"].restricted, "restricted_test": re["test"].restricted,
            "excluded_train": re["train"].excluded, "excluded_test": re["test"].excluded,
            "sum_sq_weights": sum_sq_weights(trainable_weights(model)), "embed_gini": gini(norms),
            "embed_key_share": freq_share(norms, key), "logit_key_share": logit_key_share(logits, p, key),
            "embed_norms": [round(float(v), 6) for v in norms]}


def measures_over_training(work: Path, tc: GrokConfig, key: list[int], data: Data, every: int,
                           progress: Any = None) -> dict[str, list]:
    """Progress measures of each analysed snapshot (cached in ``work/measures.json`` per key-frequency set)."""
    cache_file = work / "measures.json"
    cache: dict[str, Any] = {}
    if cache_file.is_file():
        try:
            cache = read_json(cache_file)
        except CheckpointCorrupt:
            cache = {}
    rows = cache.get("rows", {}) if cache.get("key") == key else {}
    epochs = [e for e in list_snapshots(work) if e <= tc.epochs and (e % every == 0 or e == tc.epochs)]
    for i, e in enumerate(epochs):
        if str(e) not in rows:
            rows[str(e)] = measure(load_snapshot(work, e, tc), tc, key, data)
            if i % 25 == 0:
                atomic_write_json(cache_file, {"key": key, "rows": rows})
        if progress is not None:
            progress(i / max(1, len(epochs)), f"progress measures: snapshot {i + 1}/{len(epochs)} (epoch {e})")
    atomic_write_json(cache_file, {"key": key, "rows": rows})
    out: dict[str, list] = {"epochs": epochs}
    for name in (rows[str(epochs[0])] if epochs else {}):
        out[name] = [rows[str(e)][name] for e in epochs]
    return out


def _at(series: dict[str, list], name: str, epoch: int | None) -> float | None:
    """The measure at the analysed snapshot nearest to ``epoch``."""
    if epoch is None or not series.get("epochs"):
        return None
    i = min(range(len(series["epochs"])), key=lambda j: abs(series["epochs"][j] - epoch))
    return series[name][i]


def first_below(epochs: list[int], values: list[float], level: float) -> int | None:
    return next((e for e, v in zip(epochs, values) if v < level), None)


def checks(h: GrokHistory, phases: dict[str, int | None], series: dict[str, list], final: dict[str, Any],
           key: list[int]) -> list[Check]:
    """Issue 15's verdict checks (a)-(e)."""
    mem_epoch = next((e for e, tr, te in zip(h.epochs, h.train_acc, h.test_acc) if tr >= 0.99 and te <= 0.10), None)
    grok = phases["grokked"]
    gap = grok - mem_epoch if (grok is not None and mem_epoch is not None) else None
    a = Check("(a) memorisation (train acc >= 99%, test acc <= 10%), then test acc >= 95%",
              mem_epoch is not None and grok is not None and grok > mem_epoch,
              f"memorised by epoch {mem_epoch}, test acc >= {GROK_ACC:.0%} at epoch {grok}: gap {gap} epochs")
    share = final["embed_key_share"]
    b = Check("(b) at most 8 key frequencies carry >= 90% of the embedding's squared Fourier norm",
              0 < len(key) <= 8 and share >= 0.9,
              f"{len(key)} key frequencies {key} (from the MLP neurons) carry {share:.1%} of the embedding's squared "
              f"Fourier norm; the fewest frequencies carrying 90%: {len(final['top90'])} {final['top90']}")
    ep = series.get("epochs", [])
    t_r = first_below(ep, series.get("restricted_test", []), 1.0)
    t_t = first_below(h.epochs, h.test_loss, 1.0)
    ex_mem, ex_cf = _at(series, "excluded_train", phases["memorised"]), _at(series, "excluded_train",
                                                                             phases["cleanup_start"])
    tr_cf = _at(series, "train_loss", phases["cleanup_start"])
    early = t_r is not None and t_t is not None and t_t - t_r >= 0.1 * t_t
    rises = None not in (ex_mem, ex_cf, tr_cf) and ex_cf >= 10 * ex_mem and ex_cf >= 10 * tr_cf
    c = Check("(c) restricted loss falls well before test loss; excluded loss rises during circuit formation",
              bool(early and rises),
              f"restricted (test) loss < 1 nat at epoch {t_r}, test loss at {t_t} "
              f"({'' if early else 'not '}>= 10% earlier); excluded train loss {_fmt(ex_mem)} at the end of "
              f"memorisation -> {_fmt(ex_cf)} when circuit formation ends (train loss then {_fmt(tr_cf)})")
    cs, mem = phases["cleanup_start"], phases["memorised"]
    ce = phases["cleanup_end"] if phases["cleanup_end"] is not None else (h.epochs[-1] if cs is not None else None)
    w_mem, w_cs, w_ce = (_at(series, "sum_sq_weights", e) for e in (mem, cs, ce))
    falls = None not in (w_mem, w_cs, w_ce) and ce > cs and w_ce <= 0.95 * w_cs
    rate_cf = (w_mem - w_cs) / max(1, cs - mem) if falls else None
    rate_cl = (w_cs - w_ce) / max(1, ce - cs) if falls else None
    end_word = "cleanup ends" if phases["cleanup_end"] else "end of run"
    rates = (f"; per 1k epochs: {1000 * rate_cf:.1f} in circuit formation, {1000 * rate_cl:.1f} in cleanup"
             if falls else "")
    d = Check("(d) the weight norm falls during cleanup (by >= 5%, faster than during circuit formation)",
              bool(falls and rate_cl > rate_cf),
              f"sum of squared weights {_fmt(w_mem)} (epoch {mem}) -> {_fmt(w_cs)} (cleanup starts, {cs}) -> "
              f"{_fmt(w_ce)} ({end_word}, {ce}){rates}")
    e = Check("(e) the key cos(w(a+b-c)) terms explain >= 90% of the logits' variance",
              final["logit_key_share"] >= 0.9, f"{final['logit_key_share']:.1%} of the variance (logits centred "
              f"over c for each pair), {final['logit_key_share_sin']:.1%} with the sin terms too")
    return [a, b, c, d, e]


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


# ----------------------------------------------------------------------------- model card


def model_card(name: str, c: GrokkingConfig, h: GrokHistory, phases: dict[str, int | None], final: dict[str, Any],
               key: list[int], verdict: Verdict) -> str:
    sets = " ".join(f"--set {k}={v}" for k, v in dataclasses.asdict(c).items()
                    if v != getattr(GrokkingConfig(), k) and k != "out_model")
    rows = "\n".join(f"- {ch.claim}: **{'pass' if ch.passed else 'fail'}** ({ch.detail})" for ch in verdict.checks)
    return f"""# {name}: a 1-layer transformer that grokked (a + b) mod {c.p}

The model of Nanda, Chan, Lieberum, Smith & Steinhardt 2023, "Progress measures for grokking via mechanistic
interpretability", trained from scratch on CPU by this repository's `grokking` experiment. A TransformerLens-native
model (`interp.load_model("{name}")`): inputs are `a b =` with number tokens `"0"`..`"{c.p - 1}"` (ids 0..{c.p - 1})
and `"="` (id {c.p}); the answer (a + b) mod {c.p} is read from the logits of the numbers at the `=` position.

## How it was made
- Command: `python -m experiments run grokking {sets} --set out_model=models/{name}`
- Model: 1 layer, d_model {c.d_model}, {c.n_heads} heads of {c.d_model // c.n_heads}, d_mlp {c.d_mlp}, ReLU, no
  LayerNorm, learned positions, attention/MLP biases frozen at zero (as the paper's code); TL-native `NativeModel`
  initialisation (std 0.8/sqrt(d_model)), seed {c.seed}.
- Data: all {c.p * c.p:,} pairs (a, b); {c.frac_train:.0%} ({round(c.frac_train * c.p * c.p):,}) for training, split
  seed {c.data_seed}; the rest is the test set.
- Training: AdamW lr {c.lr}, weight decay {c.weight_decay}, betas (0.9, {c.beta2}), full batch, {h.epochs[-1]:,}
  epochs (the paper: 40k), float64 cross-entropy on the {c.p} answer logits; {h.seconds / 60:.1f} minutes of
  1-thread CPU training (a shared 2-core machine).

## Final numbers
- Train loss {h.train_loss[-1]:.3g} (acc {h.train_acc[-1]:.2%}), test loss {h.test_loss[-1]:.3g}
  (acc {h.test_acc[-1]:.2%}).
- Phases: train acc >= 99% at epoch {phases['memorised']}; test loss below chance (cleanup starts) at
  {phases['cleanup_start']}; test acc >= 95% at {phases['grokked']}; test acc >= 99.9% (cleanup ends) at
  {phases['cleanup_end']}.
- Key frequencies (neurons clustered by frequency): {key} (the paper's run: {PUBLISHED_KEY}; other seeds pick
  others). They carry {final['embed_key_share']:.1%} of the embedding's squared Fourier norm (Gini
  {final['embed_gini']:.2f}); cos(w(a+b-c)) on them explains {final['logit_key_share']:.1%} of the logits' variance.

## Checks (issue 15)
{rows}

`training_log.json`: per-epoch curves (every {c.log_every} epochs: train/test loss and accuracy), the phase
boundaries, and the progress measures of every analysed snapshot (restricted / excluded loss, sum of squared
weights, embedding spectrum and Gini, logit key share).
"""


# ----------------------------------------------------------------------------- experiment


@register
class Grokking(Experiment):
    name = "grokking"
    title = "Grokking: modular addition's delayed generalisation and its Fourier algorithm"
    Config = GrokkingConfig
    #: ci: p = 23 with 70% of pairs and lr 1e-2 generalises by ~725 epochs (too much data for a memorisation phase).
    presets = {"ci": {"p": 23, "frac_train": 0.7, "d_model": 32, "n_heads": 4, "d_mlp": 64, "lr": 1e-2,
                      "epochs": 800, "log_every": 25, "snapshot_every": 100, "analyse_every": 100}}
    finding = Finding(
        claim="A 1-layer transformer trained on 30% of (a + b) mod 113 first memorises, then thousands of epochs later "
              "generalises, because weight decay makes it replace the lookup table with a handful of Fourier "
              "frequencies; progress measures built from that algorithm (restricted / excluded loss, weight norm) "
              "move before test loss does.",
        source="Nanda, Chan, Lieberum, Smith & Steinhardt 2023, 'Progress measures for grokking via mechanistic "
               "interpretability' (ICLR)",
        published="train acc ~100% early; test acc jumps thousands of epochs later (replications: > 95% by ~5k "
                  "epochs); 5 key frequencies (14, 35, 41, 42, 52 in the main run); phases memorisation (0-1.4k) -> "
                  "circuit formation (1.4k-9.4k) -> cleanup (9.4k-13.3k); restricted loss falls before test loss, "
                  "excluded loss rises on train during circuit formation, the sum of squared weights falls in "
                  "cleanup; logits ~ sum_w cos(w(a+b-c)).",
        url="https://arxiv.org/abs/2301.05217",
    )

    def run(self, config: GrokkingConfig, ctx) -> RunResult:
        tc = train_config(config)
        work = ctx.shared_cache(f"grokking-train/{cache_key(tc)}")

        def cb(epoch: int, m: dict[str, Any]) -> None:
            if epoch % max(config.log_every, config.epochs // 200 or 1) == 0 or epoch == config.epochs:
                ctx.progress(0.8 * epoch / config.epochs,
                             f"epoch {epoch}: train loss {m['train_loss']:.3g} (acc {m['train_acc']:.1%}), "
                             f"test loss {m['test_loss']:.3g} (acc {m['test_acc']:.1%})")

        outcome = train_grokking(tc, work_dir=work, callback=cb, should_stop=ctx.should_stop,
                                 threads=config.threads or None, log=None)
        if outcome.stopped:
            ctx.check_cancelled()
        h = outcome.history
        data = pair_data(tc)
        ctx.progress(0.8, "final model: neurons, key frequencies, spectra")
        with torch.no_grad():
            logits, acts = fast_forward(outcome.model, data.tokens)
        clusters = neuron_clusters(acts, tc.p)
        key = key_frequencies(clusters)
        final = measure(outcome.model, tc, key, data)
        w = weights_for_analysis(outcome.model, tc.p)
        embed = embedding_freq_norms(w["W_E"])
        unembed = unembedding_freq_norms(w["W_U"])
        final["top90"] = top_frequencies(embed, 0.9)
        final["logit_key_share_sin"] = logit_key_share(logits[:, : tc.p], tc.p, key, with_sin=True)
        series = measures_over_training(work, tc, key, data, config.analyse_every,
                                        lambda f, m: ctx.progress(0.82 + 0.15 * f, m))
        phases = h.phases(tc.p)
        cks = checks(h, phases, series, final, key)
        verdict = Verdict.from_checks(cks)
        counts = clusters.counts()
        mem_rows = [(e, tr, te) for e, tr, te in zip(h.epochs, h.train_acc, h.test_acc)]
        metrics = {
            "epochs": h.epochs[-1], "final_train_loss": h.train_loss[-1], "final_test_loss": h.test_loss[-1],
            "final_train_acc": h.train_acc[-1], "final_test_acc": h.test_acc[-1],
            **{f"epoch_{k}": v for k, v in phases.items()},
            "grok_gap_epochs": (phases["grokked"] - phases["memorised"]
                                if phases["grokked"] is not None and phases["memorised"] is not None else None),
            "max_test_acc_while_memorised": max([te for e, tr, te in mem_rows if tr >= 0.99 and
                                                 (phases["grokked"] is None or e < phases["grokked"])], default=None),
            "key_frequencies": key, "n_key_frequencies": len(key),
            "neurons_per_key_frequency": {str(k): counts.get(k, 0) for k in key},
            "neurons_unclustered": counts.get(0, 0),
            "embed_key_share": final["embed_key_share"], "embed_gini": final["embed_gini"],
            "embed_top90_frequencies": final["top90"], "logit_key_share": final["logit_key_share"],
            "logit_key_share_with_sin": final["logit_key_share_sin"],
            "final_restricted_test_loss": final["restricted_test"],
            "final_excluded_train_loss": final["excluded_train"],
            "final_sum_sq_weights": final["sum_sq_weights"],
        }
        figures = {
            "curves": curves_figure(h.epochs, h.train_loss, h.test_loss, h.train_acc, h.test_acc, phases),
            "embedding_spectrum": spectrum_figure(embed.tolist(), key, "Embedding Fourier spectrum (final)"),
            "unembedding_spectrum": spectrum_figure(unembed.tolist(), key, "Unembedding Fourier spectrum (final)"),
            "progress_measures": progress_figure(series["epochs"], {
                "train loss": series["train_loss"], "test loss": series["test_loss"],
                "restricted loss (test)": series["restricted_test"], "excluded loss (train)": series["excluded_train"],
            }, phases),
            "weight_norm": weight_norm_figure(series["epochs"], series["sum_sq_weights"], phases),
            "spectrum_over_time": spectrum_over_time_figure(series["epochs"], series["embed_norms"], key),
            "neuron_clusters": neuron_clusters_figure(counts, key, n_freqs(tc.p)),
        }
        summary = self._summary(config, h, phases, metrics, cks, outcome.resumed_from)
        if config.out_model:
            if phases["grokked"] is None:
                summary += (f"\n\n**Model not written** to `{config.out_model}`: the run did not grok (test "
                            f"accuracy never reached {GROK_ACC:.0%}).")
            else:
                out = Path(config.out_model)
                log = {"phases": phases, "key_frequencies": key,
                       "neuron_counts": {str(k): v for k, v in counts.items()},
                       "final_embed_norms": embed.tolist(), "final_unembed_norms": unembed.tolist(),
                       "measures": series, "p": tc.p, "checks": [dataclasses.asdict(ch) for ch in cks]}
                save_trained(outcome, out, model_card(out.name, config, h, phases, final, key, verdict), log)
                summary += f"\n\nModel written to `{out}` (README.md model card, training_log.json)."
        return RunResult(metrics=metrics, verdict=verdict, summary=summary, figures=figures)

    @staticmethod
    def _summary(c: GrokkingConfig, h: GrokHistory, phases: dict[str, int | None], m: dict[str, Any],
                 cks: list[Check], resumed_from: int) -> str:
        def f(v: Any) -> str:
            return "-" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v))

        rows = [
            ("train acc >= 99% (memorised)", "~1.4k epochs (end of memorisation)", f(phases["memorised"])),
            ("test acc >= 95% (grokked)", "thousands of epochs later; ~5k-10k in replications", f(phases["grokked"])),
            ("cleanup (test loss < ln p -> test acc 99.9%)", "9.4k - 13.3k",
             f"{f(phases['cleanup_start'])} - {f(phases['cleanup_end'])}"),
            ("key frequencies", "5: 14, 35, 41, 42, 52 (seed-dependent)",
             f"{m['n_key_frequencies']}: {', '.join(map(str, m['key_frequencies']))}"),
            ("embedding norm on key freqs", "sparse (most of the norm)", f"{m['embed_key_share']:.1%}"),
            ("logit variance from cos(w(a+b-c))", "most (the algorithm)", f"{m['logit_key_share']:.1%}"),
            ("final test accuracy", "100%", f"{m['final_test_acc']:.2%}"),
        ]
        table = "\n".join(["| quantity | published | ours |", "|---|---|---|"]
                          + [f"| {a} | {b} | {c_} |" for a, b, c_ in rows])
        checks_md = "\n".join(f"- {'PASS' if ch.passed else 'FAIL'} {ch.claim}: {ch.detail}" for ch in cks)
        resumed = f" (resumed from the cached run at epoch {resumed_from})" if resumed_from else ""
        return (f"p = {c.p}, {c.frac_train:.0%} of pairs train, weight decay {c.weight_decay}, lr {c.lr}, "
                f"{h.epochs[-1]:,} full-batch epochs, seed {c.seed}.\n\n{table}\n\n### Checks\n{checks_md}\n\n"
                f"Training wall time: {h.seconds / 60:.1f} min over all sessions of this cache{resumed}.")
