"""The price files' bytes and their digest, without parsing them: the warm report path compares the digest
with the one the ledger's costs were computed with, and imports `daemon.pricing` only when they differ."""

from __future__ import annotations

import hashlib
from pathlib import Path


def bundled_text() -> str:
    """Return the bundled price table's JSON text."""
    try:  # the plain file next to this module (every normal install); resources only for zipped installs
        return (Path(__file__).parent / "data" / "prices.json").read_text(encoding="utf-8")
    except OSError:
        from importlib import resources

        return resources.files("daemon").joinpath("data/prices.json").read_text(encoding="utf-8")


def prices_digest(user_file: Path | None = None) -> str:
    """Return the digest `load_prices(user_file)` would carry, from the files' bytes alone (no parsing)."""
    h = hashlib.sha256(bundled_text().encode())
    if user_file is not None:
        try:
            h.update(user_file.read_bytes())
        except OSError:
            h.update(b"unreadable")
    return h.hexdigest()[:16]
