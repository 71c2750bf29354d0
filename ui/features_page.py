"""Features page: a local Neuronpedia for the sparse autoencoders beside a model, and a panel to train one.

Pick a model and one of its SAEs (``models/<model>/saes/<name>/``, SAELens format, or any SAE folder), and
browse its latents on a held-out token sample: sortable by density and max activation; per latent the
activation histogram, top contexts shaded by activation, logit effects through W_U, and for an Othello-GPT the
correlation with each square. Search latents by token, see which latents fire on a typed prompt, steer with a
latent's decoder direction. Analyses are in ``probes.features.latents``, figures in ``plots.features``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
import torch

from experiments.core.preconditions import tokens_not_degenerate
from interp.loading import bundled_models
from interp.model import Model
from interp.prompt_check import check_prompt
from interp.sites import Site
from interp.token_display import token_pieces, visible, visible_tokens
from interp.tokens import tokenize
from learned.sae import SparseAutoencoder
from learned.sae_files import list_saes, load_sae
from plots import features as fplots
from probes.features import latents as sf
from probes.features.splice import sae_site
from tasks.othello import RELATIVE_CLASSES, is_othello_model
from training.sae import SAETrainSettings, train_sae
from training.sae_data import model_sae_job, sample_tokens
from ui import explain, figures, messages, models, state, superposition_panel

SAMPLE_SEQS, SAMPLE_LEN = 64, 64
SESSION_SAE = "(trained in this session)"
TRAINED_KEY = "features_trained_sae"
STOP_KEY = "features_stop_requested"


# ---------------------------------------------------------------- cached work


@st.cache_resource(show_spinner="Loading the SAE...", max_entries=8)
def cached_sae(path: str) -> SparseAutoencoder:
    return load_sae(path)


@st.cache_resource(show_spinner="Running the model on a held-out sample...", max_entries=4)
def cached_stats(model_name: str, sae_key: str, _sae: SparseAutoencoder) -> sf.LatentStats:
    handle = models.cached_model(model_name)
    tok, mask = sample_tokens(handle, SAMPLE_SEQS, SAMPLE_LEN)
    return sf.latent_stats(handle, _sae, tok, mask)


@st.cache_resource(show_spinner="Computing logit effects...", max_entries=4)
def cached_effects(model_name: str, sae_key: str, _sae: SparseAutoencoder) -> np.ndarray:
    return sf.logit_effect_matrix(models.cached_model(model_name), _sae)


@st.cache_resource(show_spinner="Correlating latents with the board...", max_entries=4)
def cached_board(model_name: str, sae_key: str, _sae: SparseAutoencoder) -> np.ndarray:
    return sf.board_correlations(models.cached_model(model_name), _sae, n_games=40)


# ---------------------------------------------------------------- choosing a model and an SAE


def _models_with_saes() -> list[str]:
    return [m for m in bundled_models() if list_saes(m)]


def _pick(handle_name: str) -> tuple[str, SparseAutoencoder, str] | None:
    """The SAE to browse: one beside the model, a folder typed by the user, or the one trained in this session."""
    options = [p.name for p in list_saes(models.parse_ref(handle_name)[0])]
    trained = st.session_state.get(TRAINED_KEY)
    if trained is not None and trained["model"] == handle_name:
        options.append(SESSION_SAE)
    options.append("(a folder on disk)")
    state.bind("features_sae", "sae", choices=options, label="SAE")
    choice = st.selectbox("SAE", options, key="features_sae")
    if choice == SESSION_SAE:
        return SESSION_SAE, trained["sae"], f"session-{trained['id']}"
    if choice == "(a folder on disk)":
        state.bind("features_sae_dir", "sae_dir", label="SAE folder")
        path = st.text_input("SAE folder (cfg.json + sae_weights.safetensors)", key="features_sae_dir")
        if not path.strip():
            st.info("Type the path of an SAE folder in SAELens format, or train one below.")
            return None
    else:
        path = str(next(p for p in list_saes(models.parse_ref(handle_name)[0]) if p.name == choice))
    sae = messages.guarded(cached_sae, path)
    if sae is None:
        return None
    return choice, sae, str(Path(path).resolve())


def _check_fits(handle: Model, sae: SparseAutoencoder) -> bool:
    return messages.guarded(sae_site, handle, sae) is not None


# ---------------------------------------------------------------- sections


SORTS = ("max activation", "density", "mean when active")
#: Latents firing on more than this share of sample tokens are "dense" (their max activation says little about
#: what they mean) and listed after the others by default, so the latent opened first is a sparse one.
DENSE_SHARE = 0.1
LATENT = "features_latent"


def open_latent(latent: int) -> None:
    """Open ``latent`` (a click on the scatter, a table row or an ID): the page shows it on its next run."""
    state.keep(LATENT, int(latent))
    state.forget("features_steer_latent")  # steering follows the opened latent


def _point_latent(point: dict) -> None:
    if (latent := figures.clicked_index(point)) is not None:
        open_latent(latent)


def sorted_latents(stats: sf.LatentStats, sort: str, alive_only: bool, dense_last: bool,
                   dense_share: float) -> pd.DataFrame:
    """The latent table in the page's order: ``sort`` descending, dense latents (firing on more than
    ``dense_share`` of tokens) after the rest when ``dense_last``."""
    df = stats.table()
    df["dense"] = df["density"] > dense_share
    if alive_only:
        df = df[df["density"] > 0]
    keys, ascending = ([sort], [False]) if not dense_last else (["dense", sort], [True, False])
    return df.sort_values(keys, ascending=ascending, kind="stable")


def _latent_table(stats: sf.LatentStats) -> int:
    d_sae = len(stats.density)
    state.bind("features_sort", "sort", default=SORTS[0], choices=SORTS)
    state.bind("features_alive", "alive", default=True, kind=bool)
    state.bind("features_dense_last", "dense_last", default=True, kind=bool)
    state.bind("features_dense", "dense", default=DENSE_SHARE, kind=float, lo=0.0, hi=1.0, label="dense share")
    c1, c2, c3, c4 = st.columns(4)
    sort = c1.selectbox("Sort latents by", SORTS, key="features_sort")
    alive_only = c2.checkbox("Only latents that fire on the sample", key="features_alive")
    dense_last = c3.checkbox("Dense latents last", key="features_dense_last",
                             help="Latents that fire on many tokens top a max-activation sort but say little; "
                                  "list them after the sparse ones.")
    dense_share = float(c4.number_input("Dense: fires on more than", 0.0, 1.0, step=0.01, format="%.2f",
                                        key="features_dense", help="Share of sample tokens (0.10 = 10%)."))
    df = sorted_latents(stats, sort, alive_only, dense_last, dense_share)
    st.caption(f"{int((stats.density > dense_share).sum())} of {d_sae} latents are dense (fire on more than "
               f"{dense_share:.0%} of the sample's tokens). Click a row, or a point in the scatter, to open a latent.")
    figures.table(df.head(200).round(5), key="features-latents", on_row=lambda row: open_latent(row["latent"]))
    if df.empty:
        st.warning("No latent fires on the sample.")
        return 0
    state.bind(LATENT, "latent", kind=int, lo=0, hi=d_sae - 1)
    if LATENT not in st.session_state or not 0 <= int(st.session_state[LATENT]) < d_sae:
        state.keep(LATENT, int(df["latent"].iloc[0]))  # the top of the table: a sparse latent by default
    latent = int(st.number_input("Latent", min_value=0, max_value=d_sae - 1, step=1, key=LATENT))
    figures.figure(fplots.latent_scatter(stats.density, stats.max_act, latent), key="features-scatter",
                   on_point=_point_latent)
    return latent


def _latent_detail(handle: Model, sae: SparseAutoencoder, stats: sf.LatentStats, latent: int, model_name: str,
                   sae_key: str) -> None:
    st.subheader(f"Latent {latent}")
    st.caption(f"fires on {stats.density[latent]:.2%} of sample tokens; max activation {stats.max_act[latent]:.3f}")
    values = sf.activation_histogram(stats, latent)
    if len(values):
        figures.figure(fplots.activation_histogram(values, latent), key="features-hist")
    contexts = sf.top_contexts(stats, latent, handle.tokenizer, n=8)
    st.markdown("**Top-activating contexts** (peak token outlined, context shaded by activation)")
    if not contexts:
        st.info("This latent never fires on the sample.")
    for c in contexts:
        st.html(f"<div style='margin:2px 0'><b>{c.activation:.2f}</b> &nbsp;"
                f"{fplots.context_html(c.tokens, c.acts, c.centre, stats.max_act[latent])}</div>")
    eff = sf.logit_effects(handle, sae, latent)
    figures.figure(fplots.logit_effects_figure(eff.promoted, eff.suppressed, latent), key="features-logits")
    if is_othello_model(handle):
        corr = messages.guarded(cached_board, model_name, sae_key, sae)
        if corr is not None:
            state.bind("features_board_state", "square", default=RELATIVE_CLASSES[0], choices=RELATIVE_CLASSES)
            square = st.radio("Square state", RELATIVE_CLASSES, horizontal=True, key="features_board_state")
            i = RELATIVE_CLASSES.index(square)
            figures.figure(fplots.board_heatmap(corr[latent, i], f"Latent {latent}: correlation with each square "
                                                                f"being {square}"), key="features-board")


def _search(handle: Model, sae: SparseAutoencoder, stats: sf.LatentStats, model_name: str, sae_key: str) -> None:
    st.subheader("Search latents by token")
    state.bind("features_search", "search")
    text = st.text_input("Token (its first token is used)", key="features_search")
    if not text:
        return
    ids = handle.tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        st.error(f"{text!r} is no token of {handle.info.name}.")
        return
    tid = int(ids[0])
    fire = sf.search_latents_by_token(stats, tid)
    effects = cached_effects(model_name, sae_key, sae)
    promote = sf.tokens_promoting(effects, tid, n=10)
    c1, c2 = st.columns(2)
    with c1:
        st.markdown(f"**Fire on {handle.tokenizer.decode([tid])!r}** (mean activation on its occurrences; click a "
                    "row to open the latent)")
        figures.table(pd.DataFrame(fire, columns=["latent", "mean activation"]) if fire else
                      pd.DataFrame({"latent": pd.Series([], dtype=int), "mean activation": pd.Series([], dtype=float)}),
                      key="features-search-fire", on_row=lambda row: open_latent(row["latent"]))
    with c2:
        st.markdown(f"**Promote {handle.tokenizer.decode([tid])!r}** (decoder direction through W_U; click a row)")
        figures.table(pd.DataFrame({"latent": promote.astype(int), "logit effect": effects[promote, tid].round(4)}),
                      key="features-search-promote", on_row=lambda row: open_latent(row["latent"]))


def _tokens_of(handle: Model, prompt: str) -> torch.Tensor | None:

    try:
        batch = tokenize(handle, [prompt])
    except Exception as e:  # noqa: BLE001 - bad prompts are messages
        messages.show_error(e)
        return None
    check = messages.guarded(check_prompt, handle, prompt)
    if check is not None and check.vocab_warning:
        st.warning(check.vocab_warning)
    return batch.tokens[0, : int(batch.lengths[0])]


@st.cache_resource(show_spinner="Running the SAE on your prompt...", max_entries=16)
def cached_prompt_acts(model_name: str, sae_key: str, prompt: str, _sae: SparseAutoencoder,
                       _tokens: torch.Tensor) -> torch.Tensor:
    """``[pos, d_sae]`` latent activations on one prompt: one forward pass per (model, SAE, prompt); opening
    another latent re-reads them."""
    return sf.latent_acts(models.cached_model(model_name), _sae, _tokens[None])[0]


def fire_table(handle: Model, tokens: torch.Tensor, acts: torch.Tensor, n: int = 5) -> pd.DataFrame:
    """The ``n`` most active latents at each position of a prompt, one row per (position, latent)."""
    top = acts.topk(min(n, acts.shape[-1]), dim=-1)  # [pos, n]
    toks = visible_tokens(handle.tokenizer, tokens.tolist())
    rows = [{"position": p, "token": toks[p], "latent": int(i), "activation": round(float(v), 4)}
            for p in range(acts.shape[0]) for i, v in zip(top.indices[p], top.values[p]) if v > 0]
    return pd.DataFrame(rows, columns=["position", "token", "latent", "activation"])


def _fire_here(handle: Model, sae: SparseAutoencoder, model_name: str, sae_key: str, latent: int) -> None:
    st.subheader("Which latents fire here")
    default = "C4 E3 F6 E6 F5" if is_othello_model(handle) else "def f(x):\n    return"
    state.bind("features_prompt", "fprompt", default=default)
    prompt = st.text_area("Prompt", key="features_prompt", height=80)
    tokens = _tokens_of(handle, prompt) if prompt else None
    if tokens is None or len(tokens) == 0:
        return
    st.session_state["features_prompt_tokens"] = tokens
    acts = messages.guarded(cached_prompt_acts, model_name, sae_key, prompt, sae, tokens)  # [pos, d_sae]
    if acts is None:
        return
    st.caption("The five most active latents at each position; click a row to open that latent.")
    figures.table(fire_table(handle, tokens, acts), key="features-fire", on_row=lambda row: open_latent(row["latent"]))
    st.markdown(f"**Latent {latent} on this prompt, token by token** (shaded by its activation relative to its "
                "maximum on the sample)")
    mine = acts[:, latent].float().numpy()  # [pos]
    pieces = [p.text for p in token_pieces(handle.tokenizer, tokens.tolist())]
    peak = int(mine.argmax()) if mine.max() > 0 else -1
    st.html(f"<div style='line-height:2'>{fplots.context_html(pieces, mine, peak, max(float(mine.max()), 1e-9))}"
            "</div>")
    figures.figure(fplots.prompt_activation_figure([visible(t) for t in pieces], mine, latent),
                   key="features-latent-prompt")


@st.cache_resource(show_spinner="Steering...", max_entries=32)
def cached_steer(model_name: str, sae_key: str, prompt: str, latent: int, scale: float, _sae: SparseAutoencoder,
                 _tokens: torch.Tensor) -> sf.SteerResult:
    """Two forward passes per (model, SAE, prompt, latent, scale); other controls re-read the result."""
    return sf.steer(models.cached_model(model_name), _sae, _tokens, latent, scale)


def _steer(handle: Model, sae: SparseAutoencoder, latent: int, model_name: str, sae_key: str) -> None:
    st.subheader("Steering")
    tokens = st.session_state.get("features_prompt_tokens")
    if tokens is None:
        st.info("Type a prompt above to steer its next token.")
        return
    state.bind("features_steer_latent", "steer", default=latent, kind=int, lo=0, hi=sae.cfg.d_sae - 1,
               label="steering latent")
    state.bind("features_steer_scale", "scale", default=5.0, kind=float, lo=-20.0, hi=20.0)
    c1, c2 = st.columns(2)
    lat = int(c1.number_input("Latent to add", 0, sae.cfg.d_sae - 1, key="features_steer_latent"))
    scale = float(c2.slider("Scale (multiples of its unit decoder direction)", -20.0, 20.0, step=0.5,
                            key="features_steer_scale"))
    res = messages.guarded(cached_steer, model_name, sae_key, st.session_state.get("features_prompt", ""), lat,
                           scale, sae, tokens)
    if res is None:
        return
    st.caption(f"KL(plain || steered) of the next-token distribution: {res.kl:.4f} nats")
    figures.figure(fplots.steering_figure(res.tokens, res.p_before, res.p_after, lat, scale), key="features-steer")


def _request_stop() -> None:
    st.session_state[STOP_KEY] = True


def _train_panel(handle: Model, model_name: str) -> None:
    st.subheader("Train an SAE")
    st.caption("A TopK SAE on one residual-stream hook of this model, on activations computed step by step "
               "(nothing stored). For a bundled SAE use `python -m experiments run train-sae`.")
    layers = list(range(handle.info.n_layers))
    c1, c2, c3, c4 = st.columns(4)
    layer = int(c1.selectbox("Layer (hook_resid_pre)", layers, index=len(layers) // 2, key="features_train_layer"))
    expansion = int(c2.selectbox("Width (x d_model)", [2, 4, 8], index=1, key="features_train_width"))
    k = int(c3.number_input("k (active latents)", 1, 256, 16, key="features_train_k"))
    steps = int(c4.number_input("Steps", 10, 5000, 200, step=10, key="features_train_steps"))
    row = st.container(horizontal=True)
    start = row.button("Train SAE", type="primary", key="features_train")
    row.button("Stop", key="features_stop", on_click=_request_stop)
    if not start:
        return
    st.session_state[STOP_KEY] = False
    bar = st.progress(0.0, text="starting")
    try:
        text = None if is_othello_model(handle) else sample_tokens(handle, 256, 64, seed=1)[0].flatten().numpy()
        if text is not None:  # a tokenizer that turns the text into <bos>/<unk> leaves nothing to learn from
            usable = tokens_not_degenerate("training tokens", text, special=handle.tokenizer.all_special_ids,
                                           min_distinct=20)
            if not usable.passed:
                bar.empty()
                st.error(f"Not trained: {handle.info.name}'s tokenizer turns the training text into special tokens "
                         f"({usable.detail}), so an SAE would learn nothing and its variance explained would mean "
                         "nothing. Choose a text model.")
                return
        source, cfg = model_sae_job(handle, Site("resid_pre", layer), batch_seqs=16,
                                    d_sae=expansion * handle.info.d_model, text_tokens=text, text_seq=64)
        s = SAETrainSettings(architecture="topk", d_sae=cfg.d_sae, k=k, steps=steps, dead_tokens=50_000,
                             log_every=max(1, steps // 20), scale_batches=2)
        result = train_sae(source, s, cfg, progress=lambda f, m: bar.progress(f, text=m),
                           should_stop=lambda: bool(st.session_state.get(STOP_KEY)), log=None)
    except Exception as e:  # noqa: BLE001 - a message, never a traceback
        messages.show_error(e)
        return
    finally:
        st.session_state[STOP_KEY] = False
    h = result.history
    trained_id = (st.session_state.get(TRAINED_KEY) or {}).get("id", 0) + 1
    st.session_state[TRAINED_KEY] = {"model": model_name, "sae": result.sae.eval(), "id": trained_id,
                                     "history": dataclasses.asdict(h), "stopped": result.stopped}
    ve = h.variance_explained[-1] if h.variance_explained else float("nan")
    msg = (f"{'Stopped' if result.stopped else 'Trained'} after {h.tokens:,} tokens: variance explained {ve:.3f}. "
           f"Choose '{SESSION_SAE}' above to browse it.")
    (st.warning if result.stopped else st.success)(msg)
    if h.steps:
        figures.figure(fplots.training_curve(h.steps, h.variance_explained, h.dead_fraction), key="features-train")


def draw() -> None:
    st.header("Features: sparse autoencoder latents")
    explain.header("Features")
    st.caption("Sparse autoencoders split a layer's activations into many sparsely active latents (Bricken et al. "
               "2023; Gao et al. 2024). Browse the SAEs shipped beside the bundled models, or train one below.")
    with_saes = _models_with_saes()
    current = state.current_model_name()
    names = list(dict.fromkeys(([current] if current else []) + with_saes))
    if not names:
        return
    state.bind("features_model", "fmodel", choices=names, label="model")
    model_name = st.selectbox("Model", names, key="features_model",
                              help="The current model and every bundled model that has SAEs beside it.")
    st.session_state["wb_figure_model"] = model_name  # downloads name the model this page shows
    handle = messages.guarded(models.cached_model, model_name)
    if handle is None:
        return
    picked = _pick(model_name)
    if picked is not None and _check_fits(handle, picked[1]):
        name, sae, sae_key = picked
        c = sae.cfg
        st.caption(f"{name}: {c.architecture} SAE on `{c.hook_name}`, {c.d_sae} latents"
                   + (f", k = {c.k}" if c.architecture == "topk" else "")
                   + (f"; trained on {c.extra['tokens_trained']:,} tokens" if c.extra.get("tokens_trained") else ""))
        stats = messages.guarded(cached_stats, model_name, sae_key, sae)
        if stats is not None:
            latent = _latent_table(stats)
            _latent_detail(handle, sae, stats, latent, model_name, sae_key)
            _search(handle, sae, stats, model_name, sae_key)
            _fire_here(handle, sae, model_name, sae_key, latent)
            _steer(handle, sae, latent, model_name, sae_key)
    elif picked is None and not list_saes(models.parse_ref(model_name)[0]):
        st.info(f"{model_name} has no SAEs beside it yet (models/<model>/saes/); train one below.")
    state.sync_now()  # the train panel and the live toy below can take long: the link is right before them
    _train_panel(handle, model_name)
    _superposition()


def _superposition() -> None:
    st.divider()
    superposition_panel.draw()
