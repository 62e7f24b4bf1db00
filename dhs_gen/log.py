"""Logging set-up and progress bars for long local loops."""
from __future__ import annotations

import logging
import os
import sys

from tqdm.auto import tqdm

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str | int | None = None) -> None:
    """Configure root logging once (level from arg, else $DHS_LOG_LEVEL, else INFO)."""
    level = level or os.environ.get("DHS_LOG_LEVEL", "INFO")
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format=_FORMAT, stream=sys.stderr)
    else:
        root.setLevel(level)


def get_logger(name: str) -> logging.Logger:
    """Module logger; call as ``get_logger(__name__)``."""
    return logging.getLogger(name)


def progress(iterable=None, **kwargs):
    """tqdm progress bar on stderr, silenced when $DHS_NO_PROGRESS is set."""
    kwargs.setdefault("disable", bool(os.environ.get("DHS_NO_PROGRESS")))
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("mininterval", 1.0)
    return tqdm(iterable, **kwargs)
