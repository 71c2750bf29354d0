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

from interp.loading import bundled_models
from interp.model import Model
from interp.sites import Site
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
    choice = st.selectbox("SAE", options, key="features_sae")
    if choice == SESSION_SAE:
        return SESSION_SAE, trained["sae"], f"session-{trained['id']}"
    if choice == "(a folder on disk)":
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


def _latent_table(stats: sf.LatentStats) -> int:
    df = stats.table()
    c1, c2 = st.columns(2)
    sort = c1.selectbox("Sort latents by", ["max activation", "density", "mean when active"], key="features_sort")
    alive_only = c2.checkbox("Only latents that fire on the sample", value=True, key="features_alive")
    if alive_only:
        df = df[df["density"] > 0]
    df = df.sort_values(sort, ascending=False, kind="stable")
    figures.table(df.head(200).round(5), key="features-latents")
    if df.empty:
        st.warning("No latent fires on the sample.")
        return 0
    default = int(df["latent"].iloc[0])
    latent = int(st.number_input("Latent", min_value=0, max_value=len(stats.density) - 1, value=default, step=1,
                                 key="features_latent"))
    figures.figure(fplots.latent_scatter(stats.density, stats.max_act, latent), key="features-scatter")
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
            state = st.radio("Square state", RELATIVE_CLASSES, horizontal=True, key="features_board_state")
            i = RELATIVE_CLASSES.index(state)
            figures.figure(fplots.board_heatmap(corr[latent, i], f"Latent {latent}: correlation with each square "
                                                                f"being {state}"), key="features-board")


def _search(handle: Model, sae: SparseAutoencoder, stats: sf.LatentStats, model_name: str, sae_key: str) -> None:
    st.subheader("Search latents by token")
    text = st.text_input("Token (its first token is used)", value="", key="features_search")
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
    c1.markdown(f"**Fire on {handle.tokenizer.decode([tid])!r}** (mean activation on its occurrences)")
    c1.dataframe(pd.DataFrame(fire, columns=["latent", "mean activation"]) if fire else
                 pd.DataFrame({"latent": [], "mean activation": []}), width="stretch")
    c2.markdown(f"**Promote {handle.tokenizer.decode([tid])!r}** (decoder direction through W_U)")
    c2.dataframe(pd.DataFrame({"latent": promote, "logit effect": effects[promote, tid].round(4)}), width="stretch")


def _tokens_of(handle: Model, prompt: str) -> torch.Tensor | None:

    try:
        batch = tokenize(handle, [prompt])
    except Exception as e:  # noqa: BLE001 - bad prompts are messages
        messages.show_error(e)
        return None
    return batch.tokens[0, : int(batch.lengths[0])]


def _fire_here(handle: Model, sae: SparseAutoencoder) -> None:
    st.subheader("Which latents fire here")
    default = "C4 E3 F6 E6 F5" if is_othello_model(handle) else "def f(x):\n    return"
    prompt = st.text_area("Prompt", value=default, key="features_prompt", height=80)
    tokens = _tokens_of(handle, prompt) if prompt else None
    if tokens is None or len(tokens) == 0:
        return
    per_pos = sf.prompt_latents(handle, sae, tokens, n=5)
    rows = [{"position": i, "token": repr(handle.tokenizer.decode([int(t)])),
             "latents (activation)": ", ".join(f"{lat} ({a:.2f})" for lat, a in top)}
            for i, (t, top) in enumerate(zip(tokens.tolist(), per_pos))]
    st.dataframe(pd.DataFrame(rows), width="stretch")
    st.session_state["features_prompt_tokens"] = tokens


def _steer(handle: Model, sae: SparseAutoencoder, latent: int) -> None:
    st.subheader("Steering")
    tokens = st.session_state.get("features_prompt_tokens")
    if tokens is None:
        st.info("Type a prompt above to steer its next token.")
        return
    c1, c2 = st.columns(2)
    lat = int(c1.number_input("Latent to add", 0, sae.cfg.d_sae - 1, value=latent, key="features_steer_latent"))
    scale = float(c2.slider("Scale (multiples of its unit decoder direction)", -20.0, 20.0, 5.0, 0.5,
                            key="features_steer_scale"))
    res = messages.guarded(sf.steer, handle, sae, tokens, lat, scale)
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
    model_name = st.selectbox("Model", names, key="features_model",
                              help="The current model and every bundled model that has SAEs beside it.")
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
            _fire_here(handle, sae)
            _steer(handle, sae, latent)
    elif picked is None and not list_saes(models.parse_ref(model_name)[0]):
        st.info(f"{model_name} has no SAEs beside it yet (models/<model>/saes/); train one below.")
    _train_panel(handle, model_name)
    _superposition()


def _superposition() -> None:
    st.divider()
    superposition_panel.draw()
