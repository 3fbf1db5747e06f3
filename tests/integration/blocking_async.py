"""An AsyncFeedClient driven from blocking test code: its own event loop on a thread, every coroutine
run to completion there, every async iterator collected. Lets the sync client's scenarios run
unchanged against the async client (test_feed.py runs each with both)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

from client import AsyncFeedClient

T = TypeVar("T")


class BlockingAsyncClient:
    def __init__(self, address: str, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="async-client", daemon=True)
        self._thread.start()
        self.inner: AsyncFeedClient = self._run(_make(address, kwargs))

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name.startswith("iter_") or name == "repair":
            return lambda *args, **kwargs: iter(self._run(_collect(attr(*args, **kwargs))))
        if callable(attr):
            return lambda *args, **kwargs: self._run(attr(*args, **kwargs))
        return attr

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self.inner.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


async def _make(address: str, kwargs: dict[str, Any]) -> AsyncFeedClient:
    return AsyncFeedClient(address, **kwargs)  # inside the loop: its channels belong to it


async def _collect(items: AsyncIterator[T]) -> list[T]:
    return [item async for item in items]
