"""Which replica drives a partition's delivery records, and records nobody is driving.

Every replica of an author's partition holds its delivery records; the first replica in the
partition's list that is not down drives them (normally the primary). A replica takes over when every
replica before it has failed every call and health check for TAKEOVER_AFTER_S. And a record older than
ORPHAN_AFTER_S that the driving replica does not hold (it finished it and the word did not arrive
here, or it never had it: the write reached a quorum without it) is driven by a replica that does,
after asking the driver every ORPHAN_CHECK_EVERY_S. Deliveries are idempotent, so a record finished
twice does no harm. Except in cost: a node catching up after a restart (its peers replaying the
writes it missed, node/hint_drain.py) holds records the driver finished long ago, whose finishing
note is still queued behind them among its hints. It adopts nothing until it has caught up: after a
kill -9 under the bench's load a restarted node adopted ~4,000 such records and delivered them all
again, slowing its own catch-up while its peers' hints for it piled up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from common.errors import FeedringError
from common.storage_client import StorageClient
from node import keys
from node.delivery_log import DeliveryLog, RecordsWritten
from node.ownership import Ownership
from protos import storage_pb2

__all__ = ["Takeover", "TAKEOVER_AFTER_S", "ORPHAN_AFTER_S", "ORPHAN_CHECK_EVERY_S"]

log = logging.getLogger(__name__)

TAKEOVER_AFTER_S = 2.0
ORPHAN_AFTER_S = 10.0
ORPHAN_CHECK_EVERY_S = 5.0

Record = tuple[bytes, storage_pb2.Delivery]


class Takeover:
    def __init__(
        self,
        node_id: str,
        peers: StorageClient,
        ownership: Ownership,
        records: DeliveryLog,
        records_written: RecordsWritten,
        catching_up: Callable[[], bool] = lambda: False,
    ) -> None:
        self.node_id = node_id
        self.catching_up = catching_up  # restarted and still being sent the writes it missed
        self.peers = peers
        self.ownership = ownership
        self.records = records
        self.records_written = records_written  # told when adopted records are ready to drive
        self._acting: tuple[tuple[int, tuple[str, ...]], frozenset[int]] | None = None
        self._orphans_checked = 0.0
        self._orphan_check: asyncio.Task[None] | None = None
        self._adopted: set[bytes] = set()  # keys of old records of standby partitions to drive here

    def acting(self) -> frozenset[int]:
        """Partitions whose records this node drives now: those it holds where every replica before
        it in the partition's list has been down for TAKEOVER_AFTER_S (normally: where it is first)."""
        cluster_map = self.peers.map
        down = self._down()
        cache_key = (cluster_map.epoch, down)
        if self._acting is None or self._acting[0] != cache_key:
            acting = frozenset(
                p
                for p in self.ownership.owned
                if next((n for n in cluster_map.replicas(p) if n not in down), self.node_id) == self.node_id
            )
            if self._acting is not None and acting - self._acting[1]:
                log.info(
                    "delivery takes over partitions node=%s partitions=%d down=%s",
                    self.node_id,
                    len(acting - self._acting[1]),
                    ",".join(down) or "-",
                )
            self._acting = (cache_key, acting)
        return self._acting[1]

    def _down(self) -> tuple[str, ...]:
        """Other members that have failed every call and health check for TAKEOVER_AFTER_S."""
        return tuple(
            m.id
            for m in self.peers.map.members
            if m.id != self.node_id and self.peers.health.down_for_s(m.address) >= TAKEOVER_AFTER_S
        )

    def driver_of(self, partition: int) -> str | None:
        """The replica driving `partition`'s records now: the first in its list not down."""
        down = self._down()
        return next((n for n in self.peers.map.replicas(partition) if n not in down), None)

    # -- orphans ---------------------------------------------------------------------------------

    def look_for_orphans(self) -> None:
        """Every ORPHAN_CHECK_EVERY_S: records of partitions another replica drives that are older than
        ORPHAN_AFTER_S are checked with that replica (in the background) before this node drives them;
        none while this node catches up (the module doc)."""
        if time.monotonic() - self._orphans_checked < ORPHAN_CHECK_EVERY_S or self.catching_up():
            return
        if self._orphan_check is not None and not self._orphan_check.done():
            return
        self._orphans_checked = time.monotonic()
        self._orphan_check = asyncio.create_task(self._look_and_check(self.ownership.owned - self.acting()))

    async def _look_and_check(self, standby: frozenset[int]) -> None:
        # In slices (node/delivery_log.py): it seeks every standby partition's records and parses
        # them, and in one step it held a loaded node's event loop among its longest stalls.
        cutoff_ms = time.time() * 1000 - ORPHAN_AFTER_S * 1000
        old = []
        async with contextlib.aclosing(self.records.records_in_slices(standby)) as records:
            async for key, record in records:
                if 0 < record.created_at_ms < cutoff_ms:
                    old.append((key, record))
                    if len(old) >= 1000:
                        break
        if old:
            await self._check_orphans(old)

    async def stop(self) -> None:
        if self._orphan_check is not None:
            self._orphan_check.cancel()
            await asyncio.gather(self._orphan_check, return_exceptions=True)

    def adopted(self) -> list[Record]:
        """The adopted records still on disk (a record finished or replaced meanwhile is forgotten)."""
        out = []
        for key in list(self._adopted):
            record = self.records.get(key)
            if record is None:
                self._adopted.discard(key)
            else:
                out.append((key, record))
        return out

    async def _check_orphans(self, records: list[Record]) -> None:
        """Asks each partition's driving replica which of these old records it holds: those it does
        not, this node drives itself."""
        by_driver: dict[str, list[Record]] = {}
        for key, record in records:
            # The driving replica comes before this one in the partition's list; not simply the
            # first, which may be the dead primary that a replica lacking the record took over from.
            driver = self.driver_of(keys.partition_of_key(key))
            if driver is not None and driver != self.node_id:
                by_driver.setdefault(driver, []).append((key, record))
        for driver, group in by_driver.items():
            try:
                reply = await self.peers.held_deliveries.on_node(
                    driver, storage_pb2.HeldDeliveriesRequest(keys=[k for k, _ in group]), timeout_s=2.0
                )
            except FeedringError:
                continue  # unreachable: if it stays down, this node takes its partitions over
            orphans = [k for (k, _), held in zip(group, reply.held, strict=False) if not held]
            if orphans:
                log.info(
                    "delivery adopts records its driving replica lacks node=%s count=%d", self.node_id, len(orphans)
                )
                self._adopted.update(orphans)
                self.records_written.note(())
