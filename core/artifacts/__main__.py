"""`python -m core.artifacts ensure-bucket`: create the S3 bucket of ARTIFACT_STORE_URL if it is missing
(a one-shot before the API and workers start; nothing to do for a file:// store)."""
from __future__ import annotations

import sys

from core.artifacts.store import get_store


def main(argv: list[str]) -> int:
    """Run the command named in `argv`; the exit status."""
    if argv != ["ensure-bucket"]:
        print("usage: python -m core.artifacts ensure-bucket", file=sys.stderr)
        return 2
    store = get_store()
    ensure = getattr(store, "ensure_bucket", None)
    if ensure is not None:
        ensure()
    print(f"artifact store ready: {store.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
