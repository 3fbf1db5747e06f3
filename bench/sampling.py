"""A bench phase's side sampler: `tick()` every `every_s` in a thread, between entering and leaving
a `with` block, with `begin()` before the first and `end()` after the last (bench/fanout_load.py's
per-second server figures, bench/soak.py's 10-second health samples)."""

from __future__ import annotations

import threading
from typing import Self

__all__ = ["PeriodicSampler"]


class PeriodicSampler:
    every_s: float

    def begin(self) -> None:
        """Before the thread starts."""

    def tick(self) -> None:
        raise NotImplementedError

    def end(self) -> None:
        """After the thread stopped."""

    def __enter__(self) -> Self:
        self._stop = threading.Event()
        self.begin()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.end()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.tick()
