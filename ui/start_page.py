"""Start here: the guided path. Seven stops, each a button that opens a page preset to show one idea on the bundled
models (code-gpt2 unless said), what to notice there, and the finding it illustrates.

A stop sets the shared state (``state.preset``: model, prompt, head, the page's own widgets) and switches page;
its link opens the same view in a new tab. The page itself needs no model, so it is the app's first page and
draws in about a second; the default model is loaded in the background meanwhile (``ui.warmup``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st

from interp.types import Head
from ui import explain, state, warmup

MODEL, OTHELLO = "code-gpt2", "othello-gpt"
FUNCTION = "def area(width, height):\n    return width *"
REPEATED = "x = compute(a, b)\ny = 2\nx = compute(a, b)\n"


@dataclass(frozen=True)
class Stop:
    title: str
    idea: str  # what it shows, one sentence
    notice: str  # what to look for there (markdown, {glossary} links)
    page: str
    model: str | None = MODEL
    prompt: str | None = None
    head: Head | None = None
    widgets: dict[str, object] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    finding: str = ""  # the published finding it illustrates
    experiment: str | None = None  # its reproduction on the Reproductions page
    source: str = ""  # a URL


STOPS: tuple[Stop, ...] = (
    Stop("Tokens, embeddings and one forward pass",
         "It is all matrix multiplication: follow one token through every product of code-gpt2, checked against "
         "the model.",
         "The prompt becomes {token|tokens}; the last one, ' *', is selected. Its id picks a row of the "
         "{embedding}; each block's steps show the formula, the shapes and the numbers, and every check line says "
         "the hand recomputation differs from the model's own activation by at most about 1e-5 (float32 "
         "rounding): the formulas "
         "are exactly what the model does. At the end the top next token is ' he' (of ' height', the parameter "
         "not used yet). Switch the view to Generate to sample from that distribution with a {temperature}.",
         "Inside the model", prompt=FUNCTION, widgets={"wt_view": "Forward pass"}, drop=("wt_pos",),
         finding="A transformer is a sum of simple linear pieces and a few non-linearities reading and writing one "
         "residual stream (Elhage et al. 2021, A Mathematical Framework for Transformer Circuits).",
         source="https://transformer-circuits.pub/2021/framework/index.html"),
    Stop("Attention: where each token looks",
         "Each head decides which earlier tokens every token reads.",
         "The page opens on the head that attends most sharply to other earlier tokens on this prompt, 2.4, and "
         "says why. Its pattern is a stripe just below the diagonal: every token reads the token right before it, "
         "a {previous-token-head}. Hover the tokens in the strip. Other heads rest on the first token ({bos}).",
         "Attention", prompt=FUNCTION,
         finding="Previous-token heads, one half of the induction circuit (Olsson et al. 2022); code-gpt2's card "
         "names 2.4 and 2.3.",
         source="https://transformer-circuits.pub/2022/in-context-learning-and-induction-heads/index.html"),
    Stop("An induction head: copying from context",
         "A head that finds the earlier occurrence of the current token and reads what came next.",
         "Head 3.0 on a repeated line: in the second copy, each token attends to the token that followed its "
         "first occurrence, a stripe shifted off the diagonal. That is how the model predicts the rest of a "
         "repeat. The Heads page scores 3.1, 3.0 and 3.3 high on induction for code-gpt2.",
         "Attention", prompt=REPEATED, head=Head(3, 0),
         finding="Induction heads do in-context copying (Olsson et al. 2022); on code-gpt2 induction head 3.0 "
         "carries most of argument copying.", experiment="copy-circuit",
         source="https://transformer-circuits.pub/2022/in-context-learning-and-induction-heads/index.html"),
    Stop("The logit lens: a prediction forming across layers",
         "Read each layer's residual stream as if it were the last.",
         "The grid shows each layer's top guess per position. Under 'One token across layers' the position of "
         "' *' is selected with the actual next token ' he' (of ' height'): it ranks in the thousands after the "
         "embedding and block 0, 220th after block 1, 47th after block 2, and first only after block 3, where "
         "the induction heads are. The {logit-lens} shows where in depth an answer is formed.",
         "Logit lens", prompt=FUNCTION + " he",
         finding="Predictions converge toward the final output with depth (nostalgebraist 2020).",
         experiment="logit-lens", source="https://www.lesswrong.com/posts/AcKRB8wDpdaN6v6ru"),
    Stop("A probe: is there a world model?",
         "Othello-GPT saw only move sequences; is the board written in its activations?",
         "Othello-GPT is loaded and the built-in board-state data set chosen. Press 'Run probe sweep' (the page "
         "estimates the time first; fewer games is quicker). A {linear-probe} per layer reads each square as "
         "empty / mine / theirs. It counts only where it beats the majority class and the {control-task}: "
         "selectivity is the gap. Try the absolute encoding (black / white) too: the model stores the board "
         "relative to the player to move.",
         "Probes", model=OTHELLO, widgets={"probe_source": "Othello board state (built-in)"},
         finding="A linear, relative (mine / theirs) board representation in Othello-GPT (Li et al. 2023; Nanda "
         "et al. 2023); on the bundled model: relative 86.9% > absolute 74.8% > majority 53.9%.",
         experiment="othello-world-model", source="https://arxiv.org/abs/2309.00941"),
    Stop("Patching: which component causes the answer",
         "Copy one piece of a clean run into a corrupted run and see whether the answer comes back.",
         "The clean prompt defines a function of two parameters and uses one; the right answer is the other. The "
         "corrupted prompt renames both. Press 'Attribution patching (fast)', then 'Exact sweep': in the head "
         "grid, head 3.0 alone restores about all of the {logit-difference} on this pair, 3.1 about a third, "
         "and 3.3 works against the answer. {activation-patching} tests causes, not correlations.",
         "Patching", drop=("patch_model",),
         finding="Head-output patching finds the induction heads carrying argument copying (Olsson et al. 2022); "
         "on 32 held-out pairs 3.0 carries most (+1.13 [0.99, 1.29]).", experiment="copy-circuit",
         source="https://arxiv.org/abs/2202.05262"),
    Stop("Capabilities that appear suddenly",
         "Simple machinery, sudden behaviour: watch an induction head form, and grokking.",
         "Press Train with the fast preset (about a minute on 2 cores): the best head's induction score stays "
         "near 0, then jumps within a few hundred steps while the {icl-score} drops: a {phase-change}. Then "
         "switch Mode to Grokking: the bundled run memorises a + b mod 113 first and generalises thousands of "
         "epochs later ({grokking}).",
         "Train", model=None, widgets={"train_mode": "Induction phase change"},
         finding="Induction heads form in a phase change (Olsson et al. 2022); grokking on modular addition "
         "(Nanda et al. 2023).", experiment="induction-phase-change", source="https://arxiv.org/abs/2301.05217"),
)


def _open(stop: Stop) -> None:
    state.preset(stop.page, model=stop.model, prompt=stop.prompt, head=stop.head, widgets=dict(stop.widgets),
                 drop=stop.drop)


def _finding(name: str) -> None:
    state.preset("Reproductions", model=None, widgets={"repro_exp": name})


def draw() -> None:
    st.header("Start here")
    explain.header("Start here")
    warmup.start(st.session_state.get(state.MODEL))  # the current model loads while this page is read
    st.markdown("Seven stops through the workbench on its small bundled models. Each button opens a page set up "
                "to show one idea; read what to notice, then play with the controls. Words in blue open the "
                "[glossary](?page=Glossary).")
    for i, stop in enumerate(STOPS, 1):
        box = st.container(border=True, key=f"start-stop-{i}")
        box.markdown(f"#### Step {i}. {stop.title}")
        box.markdown(f"*{stop.idea}*")
        box.markdown("**What to notice:** " + explain.linked(stop.notice))
        box.markdown(f"**The finding:** {stop.finding}" + (f" [source]({stop.source})" if stop.source else ""))
        row = box.container(horizontal=True)
        where = f" ({stop.model})" if stop.model else ""
        row.button(f"Open {stop.page}{where}", key=f"start_open_{i}", type="primary", on_click=_open, args=(stop,))
        if stop.experiment:
            row.button(f"The reproduction: {stop.experiment}", key=f"start_finding_{i}", on_click=_finding,
                       args=(stop.experiment,))
        row.markdown(f"[link]({state.link(stop.page, model=stop.model, prompt=stop.prompt, head=stop.head)})",
                     help="The same view (model, prompt, head) in a new tab.")
