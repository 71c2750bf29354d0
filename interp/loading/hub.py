"""The Hugging Face Hub, reached at most once and never waited on: is it reachable, is a name cached locally."""
from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from huggingface_hub import try_to_load_from_cache


def looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def hub_reachable(timeout: float = 2.0) -> bool:
    """One TCP connect to the Hub endpoint (no retries); False when HF_HUB_OFFLINE is set."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout).close()
        return True
    except OSError:
        return False


def cached_snapshot(repo_id: str) -> Path | None:
    """The local HF-cache snapshot directory of ``repo_id`` if its config.json is cached."""
    try:
        hit = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # malformed repo ids raise validation errors: treat as not cached
        return None
    return Path(hit).parent if isinstance(hit, str) else None


def download_snapshot(repo_id: str, hint: str) -> Path:
    """Download a Hub model's config, safetensors weights and tokenizer files (nothing else, never pickles) into
    the Hugging Face cache; ModelUnavailable when the Hub refuses."""
    from huggingface_hub import snapshot_download

    from interp.errors import ModelUnavailable

    try:
        return Path(snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"]))
    except Exception as e:  # the Hub answers unknown names with assorted exception types
        line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ModelUnavailable(f"Could not download {repo_id!r} from the Hugging Face Hub: {line}", hint) from None
