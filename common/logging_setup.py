"""Log format for feedring's processes; called only from a process's __main__."""

from __future__ import annotations

import logging
import os

__all__ = ["configure_logging"]


def configure_logging(process: str) -> None:
    level = os.environ.get("FEEDRING_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)s [{process}] %(name)s: %(message)s",
    )
