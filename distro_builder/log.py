"""Logging setup and timed progress steps (mkosi's complete_step)."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator

log = logging.getLogger("distro_builder")


def setup_logging(*, verbose: bool = False, quiet: bool = False) -> None:
    """Human-readable progress on stderr; DEBUG shows every command run."""
    level = logging.DEBUG if verbose else (logging.WARNING if quiet else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("distro_builder")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


_depth = [0]


@contextlib.contextmanager
def step(message: str) -> Iterator[None]:
    """Log `message`, run the block, then log how long it took. A step inside another is one
    indented line without a time of its own (the outer step's time covers it): no "done in"
    under a "done in"."""
    if _depth[0]:
        log.info("    %s", message)
        _depth[0] += 1
        try:
            yield
        finally:
            _depth[0] -= 1
        return
    log.info("==> %s", message)
    start = time.monotonic()
    _depth[0] += 1
    try:
        yield
    finally:
        _depth[0] -= 1
    log.info("    done in %.1fs", time.monotonic() - start)
