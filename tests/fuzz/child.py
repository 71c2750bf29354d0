"""Child process for ``run_isolated``: ``python -m tests.fuzz.child PART NAME`` runs one case, prints its Outcome."""
from __future__ import annotations

import json
import sys

from tests.fuzz import cap, part_module


def main(part: str, name: str) -> int:
    mod = part_module(part)
    case = next((c for c in mod.cases() if c.name == name), None)
    if case is None:
        print("OUTCOME " + json.dumps({"status": "raw_exception", "detail": f"no case named {name!r}"}))
        return 1
    try:
        o = mod.run_case(case)
        status, detail = o.status, o.detail
    except Exception as e:  # noqa: BLE001 - reported, not raised
        status, detail = "raw_exception", cap(f"{type(e).__name__}: {e}")
    print("OUTCOME " + json.dumps({"status": status, "detail": detail}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
