"""What a node holds: the cluster map it lives by, and from it the partitions it may serve and write.

Every part of a node that acts on partitions reads this one object (servicers, local writes,
delivery, repair, transfers): nobody keeps its own copy of the map or calls back into a servicer.

- ``owned``: partitions this node holds a replica of at its map's epoch (it serves their reads);
- ``writable``: those, and the partitions a membership change is bringing here (pending replicas
  take writes before the change commits: Cassandra's pending ranges);
- ``sealed``: partitions being handed over from this node: writes are refused until the map that
  moves them is committed, so the stream to their new owner ends after the last accepted write.

A request for a key outside these is refused with WrongEpoch and this node's epoch (the caller
refreshes its map and retries, like Redis Cluster's MOVED); a caller with a *newer* epoch tells this
node it missed a map (down during a change), and it catches up from its peers. Maps are persisted
before they are used: the stored map is the truth, cluster.toml only seeds the first one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

from common.cluster_map import ClusterMap, empty_map, initial_map
from common.config import ClusterConfig
from common.errors import FeedringError, InvalidArgument, WrongEpoch
from common.partitioning import partition_of
from common.storage_client import StorageClient
from node import keys
from node.store import Store
from protos import storage_pb2

__all__ = ["Ownership", "load_map"]

log = logging.getLogger(__name__)


def load_map(store: Store, config: ClusterConfig, node_id: str) -> ClusterMap:
    """The map persisted on this node; else the one cluster.toml seeds (persisted now), or an empty
    one for a node that is not in the file (it owns nothing until a change gives it some)."""
    raw = store.get(keys.CLUSTER_MAP_KEY)
    if raw is not None:
        stored = ClusterMap.from_bytes(raw)
        if stored.partitions != config.partitions:
            raise RuntimeError(
                f"node {node_id}'s data holds {stored.partitions} partitions but {config.path} says "
                f"cluster.partitions = {config.partitions}; the partition count is fixed for the life of a cluster"
            )
        return stored
    if not any(n.id == node_id for n in config.nodes):
        return empty_map(config)
    seeded = initial_map(config)
    store.write([(keys.CLUSTER_MAP_KEY, seeded.to_bytes())])
    return seeded


class Ownership:
    def __init__(
        self,
        node_id: str,
        cluster_map: ClusterMap,
        store: Store,
        peers: StorageClient,
        partition_count: int,
        seed_addresses: Iterable[str] = (),
    ) -> None:
        self.node_id = node_id
        self.store = store  # where adopted maps are persisted
        self.peers = peers  # routes by this node's map; asked for newer maps
        self.partitions = partition_count
        self.seed_addresses = tuple(seed_addresses)  # the other nodes cluster.toml names: asked too when catching up
        self.sealed: set[int] = set()
        self.requests_served = 0  # data requests checked here, for status
        self._catching_up: asyncio.Task[None] | None = None
        self._set(cluster_map)
        peers.adopt(cluster_map)

    def _set(self, cluster_map: ClusterMap) -> None:
        self.map = cluster_map
        self.owned = cluster_map.owned_by(self.node_id)
        self.writable = self.owned | frozenset(
            p for p, replicas in enumerate(cluster_map.pending_table) if self.node_id in replicas
        )

    # -- the map ---------------------------------------------------------------------------------

    def adopt(self, cluster_map: ClusterMap) -> bool:
        """Takes a newer map (persisted before use); an older or equal one is ignored."""
        if cluster_map.epoch <= self.map.epoch:
            return False
        if cluster_map.partitions != self.map.partitions and self.map.epoch:
            raise InvalidArgument("a cluster map must keep the partition count")
        self.store.write([(keys.CLUSTER_MAP_KEY, cluster_map.to_bytes())])
        before = self.owned
        self._set(cluster_map)
        self.peers.adopt(cluster_map)
        if not cluster_map.changing and self.sealed:
            # A seal lasts until the change that made it commits (or is aborted): a source that
            # stays a replica of the partition (replication_factor > 1) takes writes again.
            self.sealed.clear()
        log.info(
            "cluster map adopted epoch=%d partitions_owned=%d gained=%d lost=%d change=%r",
            cluster_map.epoch,
            len(self.owned),
            len(self.owned - before),
            len(before - self.owned),
            cluster_map.change,
        )
        return True

    def behind(self, epoch: int) -> None:
        """A caller has a newer map than ours: catch up from the peers (one catch-up at a time)."""
        if self._catching_up is None or self._catching_up.done():
            log.info("a caller has a newer cluster map; catching up epoch=%d caller_epoch=%d", self.map.epoch, epoch)
            self._catching_up = asyncio.create_task(self.catch_up())

    async def catch_up(self) -> None:
        """Adopts the newest map any peer holds (a node that was down during a change)."""
        addresses = {m.address for m in self.map.members if m.id != self.node_id} | set(self.seed_addresses)
        for address in sorted(addresses):
            try:
                msg = await self.peers.get_cluster_map.at(address, storage_pb2.GetClusterMapRequest(), timeout_s=1.0)
            except FeedringError:
                continue
            self.adopt(ClusterMap.from_proto(msg))

    # -- checks ----------------------------------------------------------------------------------

    def check_read(self, epoch: int, *user_keys: str) -> None:
        """Refuses keys whose partition this node does not hold."""
        self._check(epoch, user_keys, self.owned)

    def check_write(self, epoch: int, *user_keys: str, sealed_ok: bool = False) -> None:
        """Refuses keys whose partition this node neither holds nor is receiving, and (unless
        `sealed_ok`) keys of a partition sealed for hand-over, until the map that moves it commits."""
        self._check(epoch, user_keys, self.writable)
        if self.sealed and not sealed_ok:
            for user_key in user_keys:
                part = self.partition(user_key)
                if part in self.sealed:
                    raise WrongEpoch(
                        f"partition {part} is being handed over from node {self.node_id}; retry shortly",
                        self.map.epoch,
                    )

    def check_held(self, partitions: Iterable[int]) -> None:
        not_held = set(partitions) - self.owned
        if not_held:
            raise WrongEpoch(
                f"node {self.node_id} holds no replica of partitions {sorted(not_held)[:10]} at epoch {self.map.epoch}",
                self.map.epoch,
            )

    def _check(self, epoch: int, user_keys: Sequence[str], allowed: frozenset[int]) -> None:
        # `epoch` is the caller's: a newer one than ours means we missed a map and must catch up; an
        # older one is the caller's to refresh, which our refusal (with our epoch) makes it do.
        self.requests_served += 1
        if epoch > self.map.epoch:
            self.behind(epoch)
        for user_key in user_keys:
            if not user_key:
                raise InvalidArgument("empty user key")
            part = self.partition(user_key)
            if part not in allowed:
                raise WrongEpoch(
                    f"node {self.node_id} does not own partition {part} (key {user_key!r}) at epoch {self.map.epoch}",
                    self.map.epoch,
                )

    def partition(self, user_key: str) -> int:
        return partition_of(user_key, self.partitions)

    # -- hand-over -------------------------------------------------------------------------------

    def seal(self, partitions: Iterable[int]) -> None:
        self.sealed.update(partitions)

    def unseal(self, partitions: Iterable[int]) -> None:
        self.sealed.difference_update(partitions)
