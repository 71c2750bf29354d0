"""Read and write transcoder sets in circuit-tracer's on-disk layout (plus our ``cfg.json``), safetensors only.

A transcoder set is a folder (written by us; circuit-tracer and SAELens cannot be installed beside our pins, so
the layout follows their loaders as we know them, not their code):

- per-layer (PLT), circuit-tracer's ``load_relu_transcoder`` / SAELens transcoder tensors: one file per layer
  ``layer_{l}.safetensors`` with ``W_enc`` [d_model, d_transcoder], ``b_enc`` [d_transcoder], ``W_dec``
  [d_transcoder, d_model], ``b_dec`` [d_model] and, for JumpReLU, ``threshold`` [d_transcoder]. Readers take
  ``W_enc`` in either orientation ([d_transcoder, d_model] too) when the two sizes differ.
- cross-layer (CLT), circuit-tracer's ``load_clt``: ``W_enc_{l}.safetensors`` with ``W_enc_{l}``
  [d_transcoder, d_model], ``b_enc_{l}`` [d_transcoder], ``b_dec_{l}`` [d_model] (and ``threshold_{l}``), and
  ``W_dec_{l}.safetensors`` with ``W_dec_{l}`` [d_transcoder, n_layers - l, d_model] (entry j writes layer l + j).
- ``config.yaml`` (circuit-tracer's transcoder-set settings: ``model_name``, ``feature_input_hook``,
  ``feature_output_hook``, ``scan``, ``transcoders``: the per-layer files), and ``cfg.json`` (ours: kind,
  activation, k, input site kind, sizes, the model's weights sha256, and ``workbench``: how it was trained and its
  measured metrics). A folder without ``cfg.json`` (one made by circuit-tracer's tools) is read from its file
  names: JumpReLU when thresholds are present, else ReLU.
- ``README.md``: the card.

Bundled sets live in ``models/<model>/transcoders/<name>/``. Writes are staged in a hidden sibling folder and
renamed into place (a reader sees the old set or the new one); reads refuse non-regular files and check shapes
and finiteness, so a damaged folder is an :class:`InvalidInput`, never a traceback.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any

import torch

from interp.errors import InvalidInput
from interp.loading import BUNDLED_DIR
from learned.sidecars import swap_into
from learned.transcoder import Transcoder, TranscoderConfig

CFG_FILE = "cfg.json"
YAML_FILE = "config.yaml"
#: circuit-tracer's hook names (relative to a block) for our input kinds.
INPUT_HOOKS = {"ln2_normalized": "ln2.hook_normalized", "resid_mid": "hook_resid_mid"}
MAX_FILE_BYTES = 4 * 2**30


def write_transcoder_dir(path: str | Path, tc: Transcoder, card: str | None = None) -> Path:
    """Write ``tc`` as a transcoder folder at ``path`` (atomically: staged, then renamed into place)."""
    from safetensors.torch import save_file

    c = tc.cfg
    out = Path(path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    files = []
    with torch.no_grad():
        for layer in range(c.n_layers):
            th = {"threshold": tc.threshold[layer]} if c.activation == "jumprelu" else {}
            if c.kind == "per_layer":
                name = f"layer_{layer}.safetensors"
                tensors = {"W_enc": tc.W_enc[layer], "b_enc": tc.b_enc[layer], "W_dec": tc.W_dec[layer][:, 0],
                           "b_dec": tc.b_dec[layer], **th}
                _save(save_file, tensors, staging / name)
                files.append(name)
            else:
                enc = {f"W_enc_{layer}": tc.W_enc[layer].t(), f"b_enc_{layer}": tc.b_enc[layer],
                       f"b_dec_{layer}": tc.b_dec[layer]}
                enc.update({f"threshold_{layer}": v for v in th.values()})
                _save(save_file, enc, staging / f"W_enc_{layer}.safetensors")
                _save(save_file, {f"W_dec_{layer}": tc.W_dec[layer]}, staging / f"W_dec_{layer}.safetensors")
                files += [f"W_enc_{layer}.safetensors", f"W_dec_{layer}.safetensors"]
    cfg = {"format": "workbench-transcoder-v1", "kind": c.kind, "n_layers": c.n_layers, "d_model": c.d_model,
           "d_transcoder": c.d_transcoder, "activation": c.activation, "k": c.k, "input_kind": c.input_kind,
           "feature_input_hook": INPUT_HOOKS[c.input_kind], "feature_output_hook": "hook_mlp_out",
           "model_name": c.model_name, "model_sha256": c.model_sha256, "workbench": c.extra}
    (staging / CFG_FILE).write_text(json.dumps(cfg, indent=1) + "\n")
    (staging / YAML_FILE).write_text(_yaml(c, files))
    if card is not None:
        (staging / "README.md").write_text(card)
    return swap_into(staging, out)


def _save(save_file: Any, tensors: dict[str, torch.Tensor], path: Path) -> None:
    save_file({k: v.detach().to(torch.float32).contiguous().cpu() for k, v in tensors.items()}, str(path),
              metadata={"format": "pt"})
    os.chmod(path, 0o644)


def _yaml(c: TranscoderConfig, files: list[str]) -> str:
    """circuit-tracer's transcoder-set settings as YAML (written by hand: a handful of scalar keys and a list)."""
    lines = [f"model_name: {json.dumps(c.model_name)}", f"feature_input_hook: {INPUT_HOOKS[c.input_kind]}",
             "feature_output_hook: hook_mlp_out", f"scan: {json.dumps(c.model_name + '-' + c.kind)}",
             f"transcoder_type: {'cross_layer' if c.kind == 'cross_layer' else 'per_layer'}", "transcoders:"]
    lines += [f"  - {f}" for f in files if not f.startswith("W_dec")]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- reading


def _regular(path: Path) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size <= MAX_FILE_BYTES


def _load(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not _regular(path):
        raise InvalidInput(f"{path} is missing or not a regular file.")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise InvalidInput(f"{path} is damaged ({str(e).splitlines()[0][:200] if str(e) else type(e).__name__}).") \
            from None


def is_transcoder_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (_regular(p / CFG_FILE) or _regular(p / "layer_0.safetensors")
                           or _regular(p / "W_enc_0.safetensors"))


def read_transcoder_dir(path: str | Path) -> Transcoder:
    """The transcoder set in folder ``path`` (ours or circuit-tracer's layout); anything missing, damaged or
    inconsistent is :class:`InvalidInput` naming the file."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise InvalidInput(f"{p} is not a folder; a transcoder set is a folder of safetensors files.",
                           "Train one with `python -m experiments run train-transcoder`.")
    cfg: dict[str, Any] = {}
    if (p / CFG_FILE).exists():
        if not _regular(p / CFG_FILE):
            raise InvalidInput(f"{p / CFG_FILE} is not a regular file.")
        try:
            cfg = json.loads((p / CFG_FILE).read_text())
        except (OSError, ValueError) as e:
            raise InvalidInput(f"{p / CFG_FILE} is not readable JSON ({e}).") from None
        if not isinstance(cfg, dict):
            raise InvalidInput(f"{p / CFG_FILE} is not a JSON object.")
    kind = cfg.get("kind") or ("cross_layer" if (p / "W_enc_0.safetensors").exists() else "per_layer")
    if kind not in ("per_layer", "cross_layer"):
        raise InvalidInput(f"{p}: unknown transcoder kind {str(kind)[:40]!r}.")
    n_layers = cfg.get("n_layers") or _count_layers(p, kind)
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or not 1 <= n_layers <= 1024:
        raise InvalidInput(f"{p}: n_layers must be a whole number 1..1024, got {str(n_layers)[:40]!r}.")
    layers = [_read_layer(p, kind, layer, n_layers) for layer in range(n_layers)]
    d_tc, d_model = layers[0]["W_dec"].shape[0], layers[0]["W_dec"].shape[-1]
    has_th = all("threshold" in t for t in layers)
    activation = cfg.get("activation") or ("jumprelu" if has_th else "relu")
    input_kind = cfg.get("input_kind") or {v: k for k, v in INPUT_HOOKS.items()}.get(
        str(cfg.get("feature_input_hook", "ln2.hook_normalized")), "ln2_normalized")
    k = cfg.get("k", 0)
    try:
        c = TranscoderConfig(kind=kind, n_layers=n_layers, d_model=int(d_model), d_transcoder=int(d_tc),
                             activation=activation, k=k if isinstance(k, int) and not isinstance(k, bool) else -1,
                             input_kind=input_kind, model_name=str(cfg.get("model_name", "")),
                             model_sha256=str(cfg.get("model_sha256", "")),
                             extra=cfg.get("workbench") if isinstance(cfg.get("workbench"), dict) else {})
        if cfg and (cfg.get("d_model", d_model) != d_model or cfg.get("d_transcoder", d_tc) != d_tc):
            raise InvalidInput(f"{p}: cfg.json's sizes ({cfg.get('d_model')} x {cfg.get('d_transcoder')}) differ "
                               f"from the weights' ({d_model} x {d_tc}).")
        tc = Transcoder(c)
    except InvalidInput as e:
        raise InvalidInput(f"{p}: {e.message}", e.hint) from None
    with torch.no_grad():
        for layer, t in enumerate(layers):
            want = {"W_enc": (d_model, d_tc), "b_enc": (d_tc,), "b_dec": (d_model,),
                    "W_dec": (d_tc, c.n_out(layer), d_model)}
            if activation == "jumprelu":
                want["threshold"] = (d_tc,)
            for name, shape in want.items():
                if name not in t:
                    raise InvalidInput(f"{p}: layer {layer} has no {name}.")
                if tuple(t[name].shape) != shape:
                    raise InvalidInput(f"{p}: layer {layer}'s {name} has shape {tuple(t[name].shape)}, expected "
                                       f"{shape}.")
                if not bool(torch.isfinite(t[name]).all()):
                    raise InvalidInput(f"{p}: layer {layer}'s {name} holds NaN or infinite values.")
            tc.W_enc[layer].copy_(t["W_enc"])
            tc.b_enc[layer].copy_(t["b_enc"])
            tc.b_dec[layer].copy_(t["b_dec"])
            tc.W_dec[layer].copy_(t["W_dec"])
            if activation == "jumprelu":
                tc.threshold[layer].copy_(t["threshold"])
    return tc.eval()


def _count_layers(p: Path, kind: str) -> int:
    pattern = re.compile(r"layer_(\d+)\.safetensors" if kind == "per_layer" else r"W_enc_(\d+)\.safetensors")
    found = sorted(int(m.group(1)) for f in p.iterdir() if (m := pattern.fullmatch(f.name)))
    if not found:
        raise InvalidInput(f"{p} holds no transcoder files (layer_<l>.safetensors or W_enc_<l>.safetensors).")
    if found != list(range(len(found))):
        raise InvalidInput(f"{p}: the transcoder files skip a layer (found layers {found[:20]}).")
    return len(found)


def _read_layer(p: Path, kind: str, layer: int, n_layers: int) -> dict[str, torch.Tensor]:
    """One layer's tensors under our names, W_enc as [d_model, d_tc] and W_dec as [d_tc, n_out, d_model]."""
    if kind == "per_layer":
        t = dict(_load(p / f"layer_{layer}.safetensors"))
        if "W_dec" in t and t["W_dec"].ndim == 2:
            t["W_dec"] = t["W_dec"][:, None, :]
        dec = t.get("W_dec")
        if "W_enc" in t and dec is not None and t["W_enc"].ndim == 2 and dec.ndim == 3:
            d_tc, d_model = dec.shape[0], dec.shape[-1]
            if d_tc != d_model and tuple(t["W_enc"].shape) == (d_tc, d_model):
                t["W_enc"] = t["W_enc"].t()  # [d_tc, d_model] written by some tools
        return t
    enc = _load(p / f"W_enc_{layer}.safetensors")
    dec = _load(p / f"W_dec_{layer}.safetensors")
    t = {"W_dec": dec.get(f"W_dec_{layer}", torch.empty(0))}
    for ours, theirs in (("W_enc", f"W_enc_{layer}"), ("b_enc", f"b_enc_{layer}"), ("b_dec", f"b_dec_{layer}"),
                         ("threshold", f"threshold_{layer}")):
        if theirs in enc:
            t[ours] = enc[theirs]
    if "W_enc" in t and t["W_enc"].ndim == 2:
        t["W_enc"] = t["W_enc"].t()  # stored [d_tc, d_model]
    if t["W_dec"].ndim != 3 or t["W_dec"].shape[1] != n_layers - layer:
        raise InvalidInput(f"{p}: W_dec_{layer} must be [d_transcoder, {n_layers - layer}, d_model], got "
                           f"{tuple(t['W_dec'].shape)}.")
    return t


# ----------------------------------------------------------------------------- where they live


def model_transcoder_dir(model: str | Path) -> Path:
    """Where a model's transcoders live: ``models/<name>/transcoders`` (bundled) or ``<dir>/transcoders``."""
    p = Path(model).expanduser()
    if p.is_dir():
        return p / "transcoders"
    return BUNDLED_DIR / str(model) / "transcoders"


def list_transcoders(model: str | Path) -> list[Path]:
    """Transcoder folders shipped beside a model (sorted by name); [] when it has none."""
    root = model_transcoder_dir(model)
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if not d.name.startswith(".") and is_transcoder_dir(d))
