"""Where and in what precision a model runs: the one home of the device and dtype rules (the CLI's settings,
the app and :func:`interp.load_model` all call these)."""
from __future__ import annotations

import torch

from interp.errors import InvalidInput

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
          "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}



def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """float32 (None), float16 or bfloat16, by name or as a torch dtype; any other (an integer, bool, complex or
    float8 dtype, a number, text naming none of these) is InvalidInput: weights are real numbers in those three."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype in set(DTYPES.values()):
            return dtype
        raise InvalidInput(f"dtype {str(dtype).replace('torch.', '')} cannot hold model weights; use one of float32, "
                           "float16, bfloat16.")
    if not isinstance(dtype, str):
        raise InvalidInput(f"dtype must be a name such as 'float32' or a torch dtype, got {type(dtype).__name__}.")
    try:
        return DTYPES[dtype.strip().lower()]
    except KeyError:
        shown = dtype if len(dtype) <= 40 else dtype[:37] + "..."
        raise InvalidInput(f"Unknown dtype {shown!r}; use one of float32, float16, bfloat16.") from None


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'auto' / None (CUDA when present, else CPU), 'cpu', 'cuda' or 'cuda:N' that exists, 'mps' on a Mac with an
    Apple GPU; else InvalidInput. The one device rule: loading, the CLI's settings and the app all call it."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise InvalidInput(f"Device must be text such as 'cpu' or 'cuda', got {type(device).__name__}.")
    try:
        dev = torch.device(device.strip().lower() if isinstance(device, str) else device)
    except (RuntimeError, ValueError, TypeError):
        raise InvalidInput(f"{str(device)[:60]!r} is not a device: use 'cpu', 'cuda', 'cuda:N', 'mps' or "
                           "'auto'.") from None
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise InvalidInput("Device 'mps' was asked for, but this machine has no Apple GPU; use 'cpu'.")
        return dev
    if dev.type not in ("cpu", "cuda"):
        raise InvalidInput(f"{str(device)[:60]!r} is not a device the workbench runs on: use 'cpu', 'cuda', 'mps' or "
                           "'auto'.")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidInput(f"Device {device!r} was asked for, but this machine has no CUDA GPU; use 'cpu'.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InvalidInput(f"Device {device!r} does not exist: this machine has {torch.cuda.device_count()} "
                               "CUDA device(s).")
    return dev
