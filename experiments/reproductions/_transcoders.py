"""Transcoders for the graph reproductions: a bundled set by name (``models/<model>/transcoders/<name>``) or a
folder, or, when none is named (the ci presets), a small set trained inside the run (a smoke test's stand-in)."""
from __future__ import annotations

from pathlib import Path

import torch

from experiments.builds.train_sae import _text_tokens
from experiments.core.context import RunContext
from interp.errors import InvalidInput
from interp.model import Model
from learned.transcoder import Transcoder, TranscoderConfig
from learned.transcoder_files import model_transcoder_dir, read_transcoder_dir
from training.sae_data import text_windows
from training.transcoder import MLPActivations, TranscoderTrainSettings, train_transcoder


def find_transcoder(handle: Model, name: str) -> Path:
    """A transcoder folder: ``name`` as a path, else beside the model (its directory's or the bundled one's)."""
    p = Path(name).expanduser()
    if p.is_dir():
        return p
    for root in ([Path(handle.info.path) / "transcoders"] if handle.info.path else []) + \
            [model_transcoder_dir(handle.info.name)]:
        if (root / name).is_dir():
            return root / name
    raise InvalidInput(f"No transcoder set {name!r} beside {handle.info.name} or at that path.",
                       "Train one with `python -m experiments run train-transcoder`, or leave the setting empty to "
                       "train a small one in the run.")


def transcoder_or_train(ctx: RunContext, handle: Model, name: str, kind: str, *, steps: int, expansion: int, k: int,
                        max_chars: int = 150_000, seed: int = 0) -> tuple[Transcoder, str]:
    """(transcoder, description): the named set, or a ``kind`` TopK set trained here for ``steps`` steps of 4
    windows x 64 tokens (checkpointed in the run's work folder, so a stopped run resumes)."""
    if name:
        path = find_transcoder(handle, name)
        tc = read_transcoder_dir(path)
        if tc.cfg.model_sha256 and tc.cfg.model_sha256 != handle.info.sha256:
            raise InvalidInput(f"{path} was trained on other weights than {handle.info.name}'s.")
        return tc, str(path)
    tokens = _text_tokens(handle, ctx, heldout=False, max_chars=max_chars)
    source = MLPActivations(handle, text_windows(tokens, 4, min(64, handle.info.n_ctx)), seed=seed)
    d_tc = expansion * handle.info.d_model
    s = TranscoderTrainSettings(kind=kind, d_transcoder=d_tc, k=min(k, d_tc), steps=steps, seed=seed,  # type: ignore
                                dead_tokens=10_000, log_every=max(1, steps // 4), scale_batches=2, lr=2e-3)
    cfg = TranscoderConfig(kind, handle.info.n_layers, handle.info.d_model, d_tc, k=s.k,  # type: ignore[arg-type]
                           model_name=handle.info.name, model_sha256=handle.info.sha256)
    out = train_transcoder(source, s, cfg, checkpoint=ctx.work_dir / f"{kind}-transcoder.pt",
                           should_stop=ctx.should_stop, log=None)
    if out.stopped:
        ctx.check_cancelled()
    with torch.no_grad():
        tc = out.transcoder.eval()
    return tc, f"trained in this run ({kind}, {steps} steps, {d_tc} features per layer, k {s.k}: a smoke test)"
