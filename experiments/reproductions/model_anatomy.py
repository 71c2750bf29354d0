"""model-anatomy: per-layer residual-stream norms and per-head attention entropy over a set of prompts."""
from __future__ import annotations

from dataclasses import dataclass

from experiments.core.context import RunContext
from experiments.core.registry import Check, Experiment, Finding, RunResult, Verdict, register
from experiments.core.settings import MODEL_HELP, RunSettings, setting
from interp.anatomy import model_anatomy
from interp.errors import InvalidInput
from interp.loading import default_model
from plots.common import layer_head_heatmap, lines_by_x

PROMPTS = (
    "The quick brown fox jumps over the lazy dog.",
    "def add(a, b):\n    return a + b\n",
    "In 1905 Albert Einstein published four papers that changed physics.",
    "import os\nimport sys\n\nfor path in sys.argv[1:]:\n    print(os.path.basename(path))\n",
    "When Mary and John went to the store, John gave a drink to",
    "class Stack:\n    def __init__(self):\n        self.items = []\n",
)


@dataclass
class AnatomyConfig(RunSettings):
    model: str = setting("", MODEL_HELP + " (empty: the bundled default model)", path="model")
    prompts: tuple[str, ...] = setting(PROMPTS, "prompts the norms and entropies are averaged over")

    def check(self) -> None:
        super().check()
        if not any(p.strip() for p in self.prompts):
            raise InvalidInput("Setting prompts is empty: give at least one non-empty prompt.")


@register
class ModelAnatomy(Experiment):
    name = "model-anatomy"
    title = "Model anatomy: residual-stream norm by layer and attention entropy by head"
    Config = AnatomyConfig
    presets = {"ci": {"prompts": PROMPTS[:3]}}
    finding = Finding(
        claim="The residual stream's norm grows with depth over the forward pass.",
        source="Heimersheim & Turner 2023, 'Residual stream norms grow exponentially over the forward pass' "
               "(LessWrong; measured on GPT-2 XL)",
        published="qualitative: norm rises layer over layer (BOS position excluded)",
    )

    def run(self, config: AnatomyConfig, ctx: RunContext) -> RunResult:
        handle = ctx.load_model(config.model or default_model())
        ctx.progress(0.2, f"capturing {len(config.prompts)} prompts")
        a = model_anatomy(handle, list(config.prompts))
        norms = a.resid_norm.tolist()
        n = handle.info.n_layers
        x = [f"resid_pre {ly}" for ly in range(n)] + [f"resid_post {n - 1}"]
        rises = sum(b > a_ for a_, b in zip(norms, norms[1:]))
        checks = [
            Check("final residual norm exceeds the embedding's", norms[-1] > norms[0],
                  f"{norms[0]:.2f} -> {norms[-1]:.2f} ({norms[-1] / norms[0]:.2f}x)"),
            Check("norm rises at most layer boundaries", rises >= 0.75 * (len(norms) - 1),
                  f"rises at {rises} of {len(norms) - 1} boundaries"),
        ]
        ent = a.attn_entropy
        flat = ent.flatten()
        lo = int(flat.argmin())
        summary = (
            f"Model `{handle.info.name}` ({n} layers x {handle.info.n_heads} heads, d_model {handle.info.d_model}); "
            f"{len(config.prompts)} prompts, {a.n_tokens} token positions (BOS excluded).\n\n"
            "| layer | mean resid norm |\n|---|---|\n" + "\n".join(f"| {xi} | {v:.3f} |" for xi, v in zip(x, norms))
            + f"\n\nMean attention entropy {float(flat.mean()):.3f} nats (uniform attention: {a.max_entropy:.3f}); "
            f"most focused head {lo // handle.info.n_heads}.{lo % handle.info.n_heads} "
            f"({float(flat.min()):.3f} nats)."
        )
        figures = {
            "resid_norm": lines_by_x({"mean L2 norm": norms}, x, "Residual-stream norm by layer", "hook", "mean norm"),
            "attn_entropy": layer_head_heatmap(ent.numpy(),
                                               "Attention entropy per head (nats; 0 = one key, top = uniform)",
                                               "entropy (nats)", zmin=0, zmax=a.max_entropy),
        }
        metrics = {"model": handle.info.name, "resid_norm": norms, "resid_norm_hooks": x,
                   "attn_entropy": ent, "uniform_entropy": a.max_entropy, "n_tokens": a.n_tokens}
        return RunResult(metrics, Verdict.from_checks(checks), summary, figures)
