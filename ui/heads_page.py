"""Heads page: every head's detector scores and ablation effect as layer x head heatmaps and a table; one
head's attention pattern on a repeated random sequence. The numbers come from ``probes.heads.report``."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import streamlit as st

from interp.errors import WorkbenchError
from interp.model import Model
from interp.types import Head
from plots.attention_grid import head_pattern_figure
from plots.common import layer_head_heatmap
from plots.select import add_head_picker
from probes.heads import detectors as heads_module
from probes.heads.report import ABLATION_MODES, ABLATION_SCORE, ICL_SCORE, NOISE_SE, HeadReport, head_report
from ui import explain, figures, messages, state

#: Head reports computed in this process (tests assert that choosing a head adds none).
SCANS = {"count": 0}
MAX_CACHED = 8
#: A head is picked for the user only when its induction score reaches this.
STRONG_SCORE = 0.5

#: score -> (heatmap title, colour-bar label, zmin, zmax, colour scale); None bounds = symmetric around 0.
SCORE_VIEWS = {
    "induction": ("Induction: attention to the token after the earlier copy", "induction", 0.0, 1.0, "Viridis"),
    "prev_token": ("Previous token: attention to position - 1", "previous token", 0.0, 1.0, "Viridis"),
    "duplicate": ("Duplicate token: attention to the same token's earlier copy", "duplicate", 0.0, 1.0, "Viridis"),
    "prefix_matching": ("Prefix matching: induction on tokens recurring at random gaps", "prefix matching",
                        0.0, 1.0, "Viridis"),
    "copying": ("Copying: OV-circuit eigenvalue positivity", "copying", -1.0, 1.0, "RdBu"),
    ABLATION_SCORE: ("Ablation effect ({mode}): rise of the repeated copy's loss (tokens L+2..2L), > 0 = head "
                     "helped copying", "ablation effect (nats)", None, None, "RdBu"),
    ICL_SCORE: ("Ablation ({mode}): change of the ICL score (repeated minus first copy's loss), > 0 = head helped",
                "ICL score change (nats)", None, None, "RdBu"),
}


@st.cache_resource(max_entries=1)
def _reports() -> OrderedDict[tuple, HeadReport]:
    """Process-wide store of head reports keyed by (model, weights, settings); the last MAX_CACHED are kept."""
    return OrderedDict()


def _bos_note() -> str:
    """The 'BOS handling' paragraph of probes/heads.py's docstring, so the page says what the code does."""
    doc = heads_module.__doc__ or ""
    para = next((p for p in doc.split("\n\n") if p.startswith("BOS handling")), "")
    return " ".join(para.split())


def report_for(name: str, handle: Model, seq_len: int, n_batch: int, seed: int, ablation: str) -> HeadReport | None:
    """The cached report for these settings, else computed once with a progress bar (None after an error)."""
    key = (name, handle.info.sha256, seq_len, n_batch, seed, ablation)
    store = _reports()
    if key in store:
        store.move_to_end(key)
        return store[key]
    bar = st.progress(0.0, text="Scanning heads...")
    try:
        rep = head_report(handle, seq_len=seq_len, n_batch=n_batch, seed=seed, ablation=ablation,
                          progress=lambda f, m: bar.progress(min(1.0, f), text=f"Scanning heads: {m}"))
    except WorkbenchError as e:
        messages.show_error(e)
        return None
    finally:
        bar.empty()
    SCANS["count"] += 1
    store[key] = rep
    while len(store) > MAX_CACHED:
        store.popitem(last=False)
    return rep


def _settings(n_ctx: int) -> tuple[int, int, int, str] | None:
    """Scan settings from a form (applied on submit); None with a message when the context is too short."""
    max_len = (n_ctx - 1) // 2
    if max_len < 2:
        st.error(f"The model's context ({n_ctx} tokens) is too short for BOS + two copies of >= 2 tokens.")
        return None
    state.bind("heads_seq_len", "seq", default=min(50, max_len), kind=int, lo=2, hi=max_len, label="segment length")
    state.bind("heads_batch", "rows", default=10, kind=int, lo=1, hi=64)
    state.bind("heads_seed", "seed", default=0, kind=int, lo=0, hi=2**31 - 1)
    state.bind("heads_ablation", "ablation", default="mean", choices=ABLATION_MODES)
    if st.session_state["heads_seq_len"] > max_len:  # another model with a shorter context was chosen
        st.session_state["heads_seq_len"] = max_len
    with st.form("heads_settings"):
        c1, c2, c3, c4 = st.columns(4)
        seq_len = c1.number_input("Segment length", 2, max_len, key="heads_seq_len",
                                  help=f"Each row is BOS + a random segment + the same segment again "
                                       f"(at most {max_len} tokens for this model's {n_ctx}-token context).")
        n_batch = c2.number_input("Rows (batch)", 1, 64, key="heads_batch")
        seed = c3.number_input("Seed", 0, 2**31 - 1, key="heads_seed")
        ablation = c4.selectbox("Ablation", ABLATION_MODES, key="heads_ablation",
                                help="mean: replace the head's output by its mean; zero: by 0; off: skip "
                                     "(the slowest part on big models).")
        st.form_submit_button("Scan", type="primary", key="heads_scan")
    return int(seq_len), int(n_batch), int(seed), str(ablation)


def within_noise(rep: HeadReport, score: str) -> bool:
    """Whether every head's value of an ablation score is below that score's noise floor."""
    floor = rep.noise.get(score)
    values = rep.scores.scores[score].numpy()  # [layer, head]
    return floor is not None and bool(np.nanmax(np.abs(values)) < floor)


@st.cache_resource(max_entries=4 * MAX_CACHED)
def _heatmap(key: tuple, score: str, _rep: HeadReport):
    """One score's clickable layer x head heatmap, built once per report (``key``) and score. Scores with a
    natural range use it (0..1, -1..1); ablation effects are symmetric around 0 and never narrower than their
    noise floor, so effects within the noise stay pale."""
    rep = _rep
    title, bar, zmin, zmax, scale = SCORE_VIEWS[score]
    values = rep.scores.scores[score].numpy()  # [layer, head]
    if zmin is None:
        lim = max(float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 0.0,
                  rep.noise.get(score, 0.0), 1e-6)
        zmin, zmax = -lim, lim
    title = title.format(mode=rep.ablation_mode)
    return add_head_picker(layer_head_heatmap(values, title, bar, zmin=zmin, zmax=zmax, colorscale=scale), bar)


def _head_picker(rep: HeadReport, n_layers: int, n_heads: int) -> str:
    """The head shown below: the shared selection (a heatmap click, another page, the link); on a first visit
    the strongest induction head only if it scores >= STRONG_SCORE, with a note when none does."""
    top = rep.scores.top("induction", 1)[0]
    top_score = float(rep.scores.table().set_index("head").loc[top, "induction"])
    if not state.head_chosen() and top_score >= STRONG_SCORE:  # 0.0 defaulted by another page is no choice
        state.select_head(Head.parse(top), chosen=False)
    if top_score < STRONG_SCORE:
        st.info(f"No head scores above {STRONG_SCORE} on induction (the highest is {top_score:.3f}, head {top}), "
                "so no head is picked for you: click a cell in a heatmap above or choose one here.")
    layer, head = state.layer_head(n_layers, n_heads)
    options = [f"{a}.{b}" for a in range(n_layers) for b in range(n_heads)]
    st.session_state["heads_head"] = f"{layer}.{head}"

    def changed() -> None:
        state.select_head(Head.parse(st.session_state["heads_head"]))

    return st.selectbox("Head (L.H)", options, key="heads_head", on_change=changed,
                        help="Click a heatmap cell to choose a head; the choice is kept across pages and in the "
                             "page's link.")


def draw() -> None:
    st.header("Attention heads")
    explain.header("Heads")
    handle = state.current_model()
    if handle is None:  # the reason is already shown
        return
    name = state.current_model_name()  # not None once a model loaded
    info = handle.info
    st.caption(f"Model {info.name}: {info.n_layers} layers x {info.n_heads} heads. Scores come from one batched "
               "capture of attention patterns on seeded random tokens; the ablation effect from one forward pass "
               f"per layer. {_bos_note()}")
    settings = _settings(info.n_ctx)
    if settings is None:
        return
    seq_len, n_batch, seed, ablation = settings
    rep = report_for(name, handle, seq_len, n_batch, seed, ablation)
    if rep is None:
        return
    st.caption(f"{SCANS['count']} scan(s) computed in this process; changing the head below reuses this one."
               + (f" ICL score with nothing ablated: {rep.baseline_icl:+.3f} nats (second-copy loss minus "
                  "first-copy loss; negative = the model copies)." if rep.baseline_icl is not None else ""))

    scores = [s for s in SCORE_VIEWS if s in rep.scores.scores]
    st.subheader("Scores by layer and head")
    noisy = [s for s in (ABLATION_SCORE, ICL_SCORE) if s in scores and within_noise(rep, s)]
    if noisy:
        st.warning("Differences here are within noise: every head's "
                   + " and ".join(SCORE_VIEWS[s][1] for s in noisy)
                   + f" is smaller than {NOISE_SE:g} standard errors over the {n_batch} rows ("
                   + ", ".join(f"{rep.noise[s]:.3g} nats" for s in noisy)
                   + "), so those heatmaps show noise, not which heads matter. Their colour scales start at that "
                     "floor, so such cells stay pale; more rows narrow it.")
    key = (name, handle.info.sha256, seq_len, n_batch, seed, ablation)
    cols = st.columns(2)
    for i, score in enumerate(scores):
        with cols[i % 2]:
            figures.figure(_heatmap(key, score, rep), key=f"heads-{score}", on_head=state.select_head)

    st.subheader("All heads")
    state.bind("heads_sort", "sort", default=scores[0], choices=scores)
    sort_by = st.selectbox("Sort by", scores, key="heads_sort")
    figures.table(rep.scores.table(sort_by), key="head-scores")

    _one_head(rep, info.n_layers, info.n_heads, scores, seq_len)


@st.fragment
def _one_head(rep: HeadReport, n_layers: int, n_heads: int, scores: list[str], seq_len: int) -> None:
    """The head picker and its pattern: choosing a head here reruns only this part of the page."""
    st.subheader("One head on a repeated random sequence")
    chosen = _head_picker(rep, n_layers, n_heads)
    lay, h = (int(v) for v in chosen.split("."))
    row = rep.scores.table().set_index("head").loc[chosen]
    st.markdown(" · ".join(f"{s}: **{row[s]:+.3f}**" for s in scores))
    title = (f"Head {lay}.{h} attention pattern on BOS + {seq_len} random tokens + the same again "
             "(an induction head lights the diagonal just right of the copy's offset)")
    fig = head_pattern_figure(rep.pattern(lay, h), rep.example_tokens, title)
    edge = seq_len + 0.5  # boundary between the first and the second copy
    fig.add_hline(y=edge, line_dash="dot", line_color="#d62728")
    fig.add_vline(x=edge, line_dash="dot", line_color="#d62728")
    figures.figure(fig, key="heads-pattern")
    state.sync_url(str(st.session_state.get("page", "Heads")))  # a fragment run does not reach app.py's
