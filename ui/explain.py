"""Plain-words explanations where the pictures are: a "What am I looking at?" box on every page, and the glossary
its jargon links to. One line per page: ``explain.header("Attention")`` at the top of its ``draw()``.

The texts live here, together, so they are written in one voice and a page's code stays about its page. Each
page gets a sentence that is always visible, a few more sentences and a formula in a box, and links to the
glossary (``?page=Glossary&term=...``, opened in a new tab so the page stays as it is).
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st


@dataclass(frozen=True)
class Term:
    title: str
    text: str
    formula: str = ""  # LaTeX
    page: str = ""  # the page that shows it best


@dataclass(frozen=True)
class Explanation:
    summary: str  # one sentence, always visible
    body: str  # a few sentences, markdown; {term} placeholders become glossary links
    formula: str = ""  # LaTeX


GLOSSARY: dict[str, Term] = {
    "token": Term("Token", "A piece of text the model reads as one unit: a word, part of a word, a space or a "
                  "symbol. The tokenizer turns the prompt into a list of token ids (whole numbers); the model never "
                  "sees characters.", page="Inside the model"),
    "bos": Term("BOS (beginning of sequence)", "A special token put before the prompt. Many heads park their "
                "attention on it when they have nothing to do, so a pattern that is all on the first column "
                "usually means 'this head is resting'."),
    "embedding": Term("Embedding (W_E)", "The first weight matrix: one row of d_model numbers per vocabulary "
                      "token. Token id t picks row t. Similar tokens tend to get similar rows.",
                      r"e = W_E[t] \in \mathbb{R}^{d_\mathrm{model}}", "Inside the model"),
    "position-embedding": Term("Position embedding (W_pos)", "A learned vector per position, added to the token's "
                               "embedding so the model knows where each token is (GPT-2). Models with RoPE "
                               "have none; they rotate queries and keys instead.",
                               r"x_0 = W_E[t] + W_\mathrm{pos}[p]", "Inside the model"),
    "rope": Term("RoPE (rotary position embedding)", "Instead of adding a position vector, Llama-style models turn "
                 "each pair of coordinates of a query and a key by an angle proportional to the position. The "
                 "score q·k then depends on how far apart the two tokens are.",
                 r"\theta_i = p \cdot b^{-2i/d}", "Inside the model"),
    "residual-stream": Term("Residual stream", "The running vector of each token (d_model numbers) that every "
                            "block reads from and adds its output to. Hook names: resid_pre (before a block), "
                            "resid_mid (after its attention), resid_post (after its MLP).",
                            r"x_{\ell+1} = x_\ell + \mathrm{attn}(x_\ell) + \mathrm{mlp}(\cdot)", "Inside the model"),
    "layernorm": Term("LayerNorm", "Subtracts the vector's mean, divides by its standard deviation, then scales and "
                      "shifts each coordinate by learned gains g and biases b (GPT-2).",
                      r"y = \frac{x-\mu}{\sqrt{\sigma^2+\epsilon}} \odot g + b", "Inside the model"),
    "rmsnorm": Term("RMSNorm", "Divides the vector by its root mean square and scales by learned gains; no mean "
                    "is subtracted and there is no bias (Llama).", r"y = \frac{x}{\sqrt{\tfrac1d\sum x_i^2+\epsilon}}"
                    r" \odot g", "Inside the model"),
    "head": Term("Attention head", "One of several attention units in a layer, written L.H (layer.head). Each has "
                 "its own W_Q, W_K, W_V, W_O and its own pattern; their outputs are summed.", page="Attention"),
    "qkv": Term("Query, key, value", "Three vectors each token makes with a head's matrices: the query says what it "
                "looks for, the key what it offers, the value what it passes on when read.",
                r"q = x W_Q,\ k = x W_K,\ v = x W_V", "Inside the model"),
    "attention-pattern": Term("Attention pattern", "For one head, how much each token (row, the query) reads each "
                              "earlier token (column, the key). Each row is a softmax, so it sums to 1.",
                              r"A = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_\mathrm{head}}} + M\right)",
                              "Attention"),
    "causal-mask": Term("Causal mask", "Sets the score of every later token to −∞ before the softmax, so a token "
                        "can only read itself and earlier tokens: the model cannot peek at the future it predicts.",
                        page="Inside the model"),
    "softmax": Term("Softmax", "Turns any list of numbers into probabilities: exponentiate, then divide by the sum. "
                    "Bigger numbers get more of the mass.",
                    r"\mathrm{softmax}(s)_j = e^{s_j} / \textstyle\sum_k e^{s_k}", "Inside the model"),
    "mlp": Term("MLP", "The second half of a block: a wide layer (d_mlp neurons), a non-linearity, and a projection "
                "back to d_model. It acts on each token on its own.",
                r"\mathrm{mlp}(x) = \mathrm{act}(x W_\mathrm{in} + b_\mathrm{in}) W_\mathrm{out} + b_\mathrm{out}",
                "Inside the model"),
    "gelu": Term("GELU", "A smooth ReLU: close to 0 for negative inputs, close to the input for positive ones "
                 "(GPT-2's non-linearity).", r"\tfrac12 u(1+\tanh(\sqrt{2/\pi}(u+0.044715u^3)))"),
    "swiglu": Term("SwiGLU (gated MLP)", "Llama's MLP: two projections of x, one passed through SiLU (the gate) "
                   "and multiplied element by element with the other.",
                   r"(\mathrm{SiLU}(x W_\mathrm{gate}) \odot x W_\mathrm{in}) W_\mathrm{out}", "Inside the model"),
    "gqa": Term("Grouped-query attention", "Several query heads share one key/value head, which saves memory. Head "
                "h reads key/value head h // (n_heads / n_kv_heads).", page="Inside the model"),
    "logits": Term("Logits", "The model's raw score for every vocabulary token as the next token: the final "
                   "residual vector (after the final norm) times the unembedding.", r"\ell = y\,W_U + b_U",
                   "Inside the model"),
    "unembedding": Term("Unembedding (W_U)", "The last matrix: d_model x d_vocab. It turns the final residual "
                        "vector into one logit per token.", page="Inside the model"),
    "temperature": Term("Temperature", "Divides the logits before the softmax. Below 1 sharpens the distribution "
                        "(0 = always the top token), above 1 flattens it.", r"P(t) \propto e^{\ell_t/T}",
                        "Inside the model"),
    "top-k": Term("Top-k sampling", "Keep only the k most probable next tokens, renormalise, then draw.",
                  page="Inside the model"),
    "top-p": Term("Top-p (nucleus) sampling", "Keep the fewest most probable tokens whose probabilities add up to "
                  "at least p, renormalise, then draw.", page="Inside the model"),
    "hook": Term("Hook / site", "A named place inside the model where an activation can be read or changed, e.g. "
                 "blocks.2.hook_resid_pre (the residual stream entering block 2) or blocks.1.attn.hook_pattern.",
                 page="Inside the model"),
    "induction-head": Term("Induction head", "A head that, at a token A, looks for an earlier occurrence of A and "
                           "attends to the token that came right after it (B), so the model predicts B again: it "
                           "copies from context. Needs a previous-token head in an earlier layer (Olsson et al. "
                           "2022).", page="Heads"),
    "previous-token-head": Term("Previous-token head", "A head whose every token attends to the token just before "
                                "it: a diagonal stripe one below the main diagonal.", page="Attention"),
    "icl-score": Term("In-context learning (ICL) score", "On a random sequence repeated twice: the loss on the second "
                      "copy minus the loss on the first. Near 0 without context use; strongly negative when the "
                      "model copies from context (induction heads predict the repeat).",
                      r"\mathrm{loss}_{\text{2nd copy}} - \mathrm{loss}_{\text{1st copy}}", "Train"),
    "ablation": Term("Ablation", "Switching a component off (its output set to zero or to its mean) and measuring "
                     "how much worse the model gets.", page="Heads"),
    "logit-lens": Term("Logit lens", "Read an intermediate residual stream as if it were the last one: apply the "
                       "final norm and the unembedding to it and see what the model 'would predict' at that layer "
                       "(nostalgebraist 2020).", r"\mathrm{softmax}(\mathrm{LN}_f(x_\ell) W_U)", "Logit lens"),
    "tuned-lens": Term("Tuned lens", "A logit lens with a small learned affine map per layer first, so early layers "
                       "are read in the right basis (Belrose et al. 2023).", page="Logit lens"),
    "kl-divergence": Term("KL divergence", "How different one distribution is from another, in nats: 0 when equal.",
                          r"\mathrm{KL}(P\|Q) = \sum_t P(t)\log\frac{P(t)}{Q(t)}"),
    "linear-probe": Term("Linear probe", "A logistic regression trained to read a property (a board square, a "
                         "label) from a layer's activations. High accuracy means the property is linearly "
                         "readable there, not that the model uses it.", page="Probes"),
    "control-task": Term("Control task and selectivity", "The same probe trained on labels that depend only on the "
                         "input token (Hewitt & Liang 2019). Selectivity = probe accuracy minus control accuracy: a "
                         "probe that does no better than the control has memorised tokens, not found structure.",
                         page="Probes"),
    "world-model": Term("World model", "An internal representation of the state of what the text is about. "
                        "Othello-GPT only sees moves, yet a linear probe reads the board from it, and editing that "
                        "direction changes its predicted moves (Li et al. 2023; Nanda et al. 2023).", page="Probes"),
    "activation-patching": Term("Activation patching", "Run a clean and a corrupted prompt; copy one activation "
                                "from the clean run into the corrupted one and see how much of the right answer "
                                "comes back. Large recovery = that component carries the information.",
                                page="Patching"),
    "attribution-patching": Term("Attribution patching", "A fast gradient approximation of activation patching: "
                                 "(clean − corrupted activation) · gradient of the metric, all components in one "
                                 "backward pass (Nanda 2023).", r"\Delta m \approx (a_c - a_x)\cdot\nabla_a m",
                                 "Patching"),
    "dla": Term("Direct logit attribution (DLA)", "How much one component's output, read straight through the "
                "unembedding, pushes the answer's logit up or down.", page="Patching"),
    "logit-difference": Term("Logit difference", "The correct answer's logit minus a wrong answer's: the usual "
                             "metric of patching.", r"\ell_\text{correct} - \ell_\text{wrong}", "Patching"),
    "ov-qk": Term("QK and OV circuits", "A head's W_Q W_Kᵀ decides where it looks (QK); its W_V W_O decides what it "
                  "writes when it looks there (OV). A copying head's OV circuit maps a token to itself (positive "
                  "eigenvalues).", r"W_{QK} = W_Q W_K^\top,\ W_{OV} = W_V W_O", "Heads"),
    "k-composition": Term("K-composition", "An earlier head's output feeding a later head's keys: how a previous-"
                          "token head and an induction head work together.", page="Heads"),
    "sae": Term("Sparse autoencoder (SAE)", "A wide layer trained to rebuild a model's activation from a few active "
                "'latents' at a time, each ideally one interpretable feature.",
                r"\hat x = \mathrm{ReLU}(x W_\mathrm{enc} + b) W_\mathrm{dec}", "Features"),
    "latent": Term("Latent (SAE feature)", "One unit of an SAE; its decoder row is a direction in the residual "
                   "stream. It is interpretable when the contexts it fires on share a meaning.", page="Features"),
    "superposition": Term("Superposition", "Storing more features than there are dimensions, as nearly orthogonal "
                          "directions, which works when features are rarely active together (Elhage et al. 2022).",
                          page="Features"),
    "phase-change": Term("Phase change", "A sudden jump in a capability during training: induction heads form within "
                         "a few hundred steps, and the in-context loss drops with them.", page="Train"),
    "grokking": Term("Grokking", "A model first memorises its training set, then much later suddenly generalises "
                     "(Power et al. 2022); for modular addition it ends up computing with a few Fourier frequencies "
                     "(Nanda et al. 2023).", page="Train"),
    "cross-entropy": Term("Cross-entropy loss", "The training loss: minus the log probability the model gave the "
                          "token that actually came next, averaged.", r"-\log P(t_\text{next})"),
    "neuron": Term("Neuron", "One unit of an MLP's hidden layer: its input weights decide when it fires, its output "
                   "weights what it writes into the residual stream.", page="Neurons"),
    "steering": Term("Steering", "Adding a direction to an activation (or scaling a component) during the forward "
                     "pass and watching the output change: a causal test of what the direction does.",
                     page="Ablate & steer"),
    "transcoder": Term("Transcoder", "A sparse layer trained to do an MLP's job: from the MLP's input it predicts the "
                       "MLP's output through a few active features. A cross-layer transcoder's features write into "
                       "every later layer.", page="Graph"),
    "attribution-graph": Term("Attribution graph", "With every MLP replaced by a transcoder and attention frozen, "
                              "the prompt's computation is linear in the features, so each edge is one feature's "
                              "direct effect on another, and the graph shows which paths reach the answer's logit "
                              "(Ameisen et al. 2025).", page="Graph"),
}


def in_sentence(title: str) -> str:
    """A term's title as it reads mid-sentence: "Logit lens" -> "logit lens"; "RoPE", "BOS", "MLP" stay."""
    first = title.split(" ", 1)[0]
    return title if sum(c.isupper() for c in first) >= 2 else title[:1].lower() + title[1:]


def link(slug: str, text: str | None = None) -> str:
    """Markdown link to a glossary term (opens the Glossary page on it)."""
    term = GLOSSARY[slug]
    return f"[{text or in_sentence(term.title)}](?page=Glossary&term={slug})"


def linked(body: str) -> str:
    """``{slug}`` and ``{slug|shown text}`` in ``body`` become glossary links."""
    out, i = [], 0
    while True:
        a = body.find("{", i)
        if a < 0:
            out.append(body[i:])
            return "".join(out)
        b = body.index("}", a)
        slug, _, shown = body[a + 1:b].partition("|")
        out.append(body[i:a])
        out.append(link(slug, shown or None))
        i = b + 1


PAGES: dict[str, Explanation] = {
    "Start here": Explanation(
        "A guided path through the workbench: seven stops, each opening a page set up to show one idea.",
        "Each stop says what to notice and which published finding it illustrates. Start with one token going "
        "through every matrix product, end with capabilities that appear suddenly during training."),
    "Inside the model": Explanation(
        "One token's trip through the whole model, every matrix product written out and recomputed by hand from "
        "the weights, next to the model's own numbers.",
        "The {token|tokens} of your prompt become ids; an id picks a row of the {embedding}; each block adds "
        "attention and an {mlp} to the {residual-stream}; the final vector times the {unembedding} gives "
        "{logits}, and a {softmax} with a {temperature} gives the next-token probabilities. Each step shows its "
        "formula, the shapes, the numbers (hover for values) and the largest difference between the hand "
        "recomputation and the model's own {hook|activation}: small (about 1e-7) means the formula is exactly what "
        "the model does. The Generate view draws tokens from that distribution with {top-k} and {top-p}.",
        r"P(\text{next}) = \mathrm{softmax}\big(\mathrm{blocks}(W_E[t] + W_\mathrm{pos})\,W_U\,/\,T\big)"),
    "Model": Explanation(
        "Which model every page uses, and its anatomy: layers, heads, widths, vocabulary and context.",
        "Bundled models are small enough for a laptop CPU; each comes with a README saying how it was trained and "
        "what it can do. The sizes are the shapes you see on Inside the model: d_model is the width of the "
        "{residual-stream}, d_head of each {qkv|query, key and value}.",
        r"\#\text{params} \approx 12\, n_\text{layers}\, d_\text{model}^2"),
    "Attention": Explanation(
        "Where each token looks: one {head|attention head}'s {attention-pattern}, a row per token (the query) and a "
        "column per earlier token (the key).",
        "A bright cell at (row i, column j) means token i reads a lot from token j. Everything above the diagonal "
        "is empty because of the {causal-mask}. A column of brightness on the first token usually means the head "
        "is resting on the {bos}; a stripe just below the diagonal is a {previous-token-head}; on a repeated text, "
        "a stripe shifted by the repeat's length is an {induction-head}. The page opens on the head that attends "
        "most sharply to other earlier tokens on your prompt.",
        r"A = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_\mathrm{head}}} + M\right)"),
    "Heads": Explanation(
        "Every head scored for the jobs heads are known to do: {induction-head|induction}, "
        "{previous-token-head|previous token}, duplicate token, copying, and what {ablation|switching it off} "
        "costs.",
        "The scores are read from attention patterns on repeated random tokens, where the right answer is known; "
        "a head is named for a job only if it scores high. Click a cell to see that head's pattern. Copying "
        "scores come from the head's {ov-qk|OV circuit}.",
        r"\text{induction score} = \text{mean attention from token } i \text{ to token } i - L + 1"),
    "Logit lens": Explanation(
        "What the model would predict if it stopped after each layer: the {logit-lens}.",
        "Each row is a layer, each column a position; a cell shows the top token when that layer's "
        "{residual-stream} is put through the final norm and the {unembedding}. Watch the right answer appear and "
        "sharpen with depth. The {tuned-lens} corrects each layer with a small learned map; the "
        "{kl-divergence} to the final output says how far each layer still is.",
        r"P_\ell = \mathrm{softmax}(\mathrm{LN}_f(x_\ell)\, W_U)"),
    "Probes": Explanation(
        "Is a property written in the model's activations? A {linear-probe} per layer tries to read it.",
        "On Othello-GPT the property is the board: the model only ever saw move sequences, yet its activations "
        "hold which squares are 'mine' and 'theirs' (a {world-model}). Accuracy only counts above the majority "
        "class and the {control-task}; selectivity is the gap to the control.",
        r"\hat y = \mathrm{softmax}(W x_\ell + b)"),
    "Patching": Explanation(
        "Which component causes the answer? {activation-patching} copies one piece of a clean run into a "
        "corrupted one and measures how much of the answer comes back.",
        "The metric is the {logit-difference} between the right and a wrong answer. 1 means that component alone "
        "restores the clean answer, 0 that it carries nothing. {attribution-patching} estimates all components "
        "at once from gradients; {dla} shows what each head writes straight into the answer's logit.",
        r"\text{recovered} = \frac{m(\text{patched}) - m(\text{corrupted})}{m(\text{clean}) - m(\text{corrupted})}"),
    "Features": Explanation(
        "A {sae} splits a layer's activations into many rarely-active {latent|latents}; this page browses them.",
        "For each latent: how often it fires, the contexts where it fires most, which tokens it promotes through "
        "the unembedding. The toy below shows why such features are stored in {superposition}: with rare "
        "features, five fit into two dimensions.",
        r"x \approx \sum_i f_i(x)\, d_i,\quad f_i(x) = \mathrm{ReLU}(x\cdot e_i + b_i)"),
    "Reproductions": Explanation(
        "Published interpretability findings, re-run on the bundled models with a verdict against the published "
        "numbers.",
        "Each experiment states the claim and its source, runs the analysis and checks the numbers. A 'ci' "
        "preset is a smoke test (it only shows the code runs); the full preset earns the verdict."),
    "Train": Explanation(
        "Watch capabilities appear during training: an {induction-head} forming in a sudden {phase-change}, and "
        "{grokking} on modular addition.",
        "The machinery is simple (a two-layer attention-only transformer, or one layer on a + b mod p), the "
        "behaviour is not: the {icl-score} drops within a few hundred steps; test accuracy jumps thousands of "
        "epochs after the training set is memorised.",
        r"\text{ICL score} = \mathrm{loss}_{\text{2nd copy}} - \mathrm{loss}_{\text{1st copy}}"),
    "Circuits": Explanation(
        "One head's {ov-qk} over the whole vocabulary: where it looks, and what it writes when it looks there.",
        "W_Q W_Kᵀ scores how much a token attends to another; W_V W_O maps the token it attends to onto what it "
        "adds to the {residual-stream}, read through the {unembedding}. Positive eigenvalues of the OV circuit mean "
        "the head copies the token it attends to, as an {induction-head} does.",
        r"W_{OV} = W_E W_V W_O W_U,\quad W_{QK} = W_E W_Q W_K^\top W_E^\top"),
    "Activations": Explanation(
        "Any activation the model computes on your prompt, at any {hook|site}, as numbers.",
        "Pick a site (the embeddings, a layer's {residual-stream}, a head's output, an {mlp} layer): each row is a "
        "position, each column one dimension. The norm per position says where the stream is large."),
    "Neurons": Explanation(
        "One MLP {neuron}: when it fires on your prompt and on held-out text, and what it writes.",
        "Its activation is shown token by token; its top-activating contexts come from held-out code; its output "
        "weights read through the {unembedding} say which next tokens it pushes up or down.",
        r"\Delta \ell = a \cdot W_{out}[n]\, W_U"),
    "Ablate & steer": Explanation(
        "Switch a component off ({ablation}) or push along a direction ({steering}) on your prompt, and see the "
        "next-token probabilities change.",
        "Zero, mean or resample ablation of a head, a neuron or a residual direction, or adding a direction; the "
        "{softmax} probabilities before and after, and the {kl-divergence} at each position, say what the "
        "component did."),
    "Graph": Explanation(
        "The circuit of one prompt: an {attribution-graph} from token embeddings through {transcoder} features to "
        "the next-token {logits}.",
        "Nodes are active features (plus error nodes for what the transcoders miss); an edge is one node's direct "
        "effect on another with attention frozen. Pruning keeps the nodes and edges that carry most of the "
        "influence on the chosen logit. Information-flow routes need no transcoder: they show which earlier "
        "tokens and heads each position's residual stream is built from."),
    "Glossary": Explanation("The words the other pages use, in plain terms, with their formulas.",
                            "Every page's 'What am I looking at?' links here."),
}


def header(page: str) -> None:
    """The page's one-sentence summary, with the rest (sentences, formula, glossary links) in a box below it."""
    ex = PAGES.get(page)
    if ex is None:
        return
    with st.expander(f"What am I looking at? {_plain(ex.summary)}", expanded=False):
        st.markdown(linked(ex.body))
        if ex.formula:
            st.latex(ex.formula)
        st.markdown("Words: [the glossary](?page=Glossary)")


def _plain(text: str) -> str:
    """``{slug|shown}`` placeholders as plain text (an expander's label cannot hold links)."""
    out = text
    while "{" in out:
        a = out.index("{")
        b = out.index("}", a)
        slug, _, shown = out[a + 1:b].partition("|")
        out = out[:a] + (shown or in_sentence(GLOSSARY[slug].title)) + out[b + 1:]
    return out
