"""An in-memory twin of a feedring cluster, used only by unit tests (hashicorp/raft's InmemTransport).

N real node servicers (node/service.py over the in-memory Store) sit behind ``InmemTransport``,
which a ``StorageClient`` uses in place of gRPC channels; routers' flows (router/flows.py) and the
nodes' own peer clients route through it by the same cluster map. Requests and replies are
serialised both ways, so what crosses it is what crosses the wire, and a servicer's abort comes back
as the same ``grpc.aio.AioRpcError`` a channel raises, so error translation is exercised too. A
scenario runs in milliseconds; `down()` / `up()` make a node unreachable like a killed process.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from common.cluster_map import ClusterMap, empty_map, initial_map
from common.config import ClusterConfig, HotUsers, Limits, NodeConfig, RouterConfig
from common.hot_state import HotPolicy
from common.storage_client import StorageClient
from node.change_feed import ChangeFeed, ObservedStore
from node.delivery import DeliveryDriver
from node.feed_store import FeedStore
from node.hints import HintLog, HintReplayer
from node.repair import Repairer
from node.replication import Replicator
from node.service import StorageServicer
from node.store import MemoryStore
from node.transfer import PartitionMover
from router.flows import RouterFlows
from router.post_ids import PostIdGenerator

__all__ = ["InmemTransport", "InmemNode", "InmemCluster", "make_config"]

Resp = TypeVar("Resp", bound=Message)


class _Aborted(grpc.aio.AbortError):
    def __init__(self, code: grpc.StatusCode, details: str, trailing: tuple[tuple[str, str], ...]) -> None:
        super().__init__(details)
        self.code, self.details, self.trailing = code, details, trailing


class InmemContext:
    """The parts of grpc.aio.ServicerContext feedring's servicers use."""

    def __init__(self) -> None:
        self.trailing: tuple[tuple[str, str], ...] = ()

    def set_trailing_metadata(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.trailing = tuple(metadata)

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        raise _Aborted(code, details, self.trailing)


def _rpc_error(code: grpc.StatusCode, details: str, trailing: tuple[tuple[str, str], ...] = ()) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details)


def _copy(message: Message, into: type[Resp]) -> Resp:
    return into.FromString(message.SerializeToString())


class InmemTransport:
    def __init__(self) -> None:
        self.servicers: dict[str, StorageServicer] = {}
        self.unreachable: set[str] = set()
        self.calls: Counter[tuple[str, str]] = Counter()  # (address, method) -> calls

    def _servicer(self, address: str) -> StorageServicer:
        servicer = self.servicers.get(address)
        if servicer is None or address in self.unreachable:
            raise _rpc_error(grpc.StatusCode.UNAVAILABLE, f"failed to connect to all addresses; last error: {address}")
        return servicer

    async def unary(
        self, address: str, method: str, request: Message, response: type[Resp], timeout_s: float, wait: bool
    ) -> Resp:
        servicer = self._servicer(address)
        self.calls[(address, method)] += 1
        context = InmemContext()
        try:
            reply = await getattr(servicer, method)(_copy(request, type(request)), context)
        except _Aborted as exc:
            raise _rpc_error(exc.code, exc.details, exc.trailing) from None
        return _copy(reply, response)

    async def stream(
        self, address: str, method: str, request: Message, response: type[Resp], timeout_s: float | None
    ) -> AsyncIterator[Resp]:
        servicer = self._servicer(address)
        self.calls[(address, method)] += 1
        try:
            async for item in getattr(servicer, method)(_copy(request, type(request)), InmemContext()):
                yield _copy(item, response)
        except _Aborted as exc:
            raise _rpc_error(exc.code, exc.details, exc.trailing) from None

    async def serving(self, address: str, timeout_s: float, service: str = "") -> bool:
        return address in self.servicers and address not in self.unreachable

    async def close(self) -> None:
        pass

    def count(self, method: str) -> int:
        return sum(n for (_, m), n in self.calls.items() if m == method)


def make_config(nodes: int = 3, partitions: int = 64, replication_factor: int = 1, **hot: Any) -> ClusterConfig:
    """A cluster file's worth of settings, without the file; `hot` overrides [hot_users] keys."""
    return ClusterConfig(
        path=Path("inmem.toml"),
        name="inmem",
        partitions=partitions,
        replication_factor=replication_factor,
        vnodes=160,
        run_dir=Path("."),
        nodes=tuple(NodeConfig(f"n{i}", f"n{i}.mem:1", Path(f"n{i}")) for i in range(1, nodes + 1)),
        routers=(RouterConfig(0, "router.mem:1"),),
        limits=Limits(timeline_cap=100),
        hot=HotUsers(**hot),
    )


class InmemNode:
    """One node: the same servicer a node process serves, over an in-memory store."""

    def __init__(
        self,
        config: ClusterConfig,
        node_id: str,
        cluster_map: ClusterMap,
        transport: InmemTransport,
        store: ObservedStore | None = None,
    ) -> None:
        changes = store.changes if store is not None else ChangeFeed()
        self.store = store if store is not None else ObservedStore(MemoryStore(), changes)
        self.feed_store = FeedStore(
            self.store,
            config.partitions,
            config.limits.timeline_cap,
            HotPolicy(config.hot.follower_threshold, config.hot.cooldown_ratio),
        )
        self.feed_store.count_keys()
        self.peers = StorageClient(cluster_map, 1.0, transport)
        self.behind_epochs: list[int] = []
        self.hints = HintLog(self.store)
        self.hints.load()
        self.replicator = Replicator(
            node_id,
            self.peers,
            self.hints,
            lambda name, request: self.servicer.apply(name, request),
            self.feed_store.clock,
            config.replication.write_quorum,
            timeout_s=1.0,
        )
        self.replayer = HintReplayer(self.hints, self.peers, lambda target, write: True)
        self.repairer = Repairer(node_id, self.feed_store, self.peers, lambda: self.servicer.owned, 0.0, 0)
        self.delivery = DeliveryDriver(
            node_id,
            self.feed_store,
            self.peers,
            lambda: self.servicer.owned,
            config.hot.salt_buckets,
            page=16,
            replicator=self.replicator,
        )
        self.servicer = StorageServicer(
            node_id,
            self.feed_store,
            cluster_map,
            PartitionMover(node_id, self.store, changes, self.peers),
            self.peers.adopt,
            behind=self.behind_epochs.append,
            delivery=self.delivery,
            replicator=self.replicator,
            repairer=self.repairer,
        )

    def start(self) -> None:
        """Starts delivering (needs the running loop)."""
        self.delivery.start()


class InmemCluster:
    def __init__(self, config: ClusterConfig) -> None:
        """Build inside the running event loop: every node starts delivering at once."""
        self.config = config
        self.transport = InmemTransport()
        self.nodes: dict[str, InmemNode] = {}
        seeded = initial_map(config)
        for node in config.nodes:
            self._serve(node.id, node.address, seeded)
        self._routers = 0

    def _serve(self, node_id: str, address: str, cluster_map: ClusterMap) -> InmemNode:
        node = self.nodes[node_id] = InmemNode(self.config, node_id, cluster_map, self.transport)
        self.transport.servicers[address] = node.servicer
        node.start()
        return node

    def restart(self, node_id: str) -> InmemNode:
        """The node's process dies and comes back over the same store: in-memory state (its delivery
        loop, counters) is new, what is on "disk" is not."""
        old = self.nodes[node_id]
        asyncio.get_running_loop().create_task(old.delivery.stop())
        node = InmemNode(self.config, node_id, old.servicer.map, self.transport, store=old.store)
        self.nodes[node_id] = node
        self.transport.servicers[f"{node_id}.mem:1"] = node.servicer
        node.start()
        return node

    def outstanding(self) -> int:
        """Delivery records not yet carried out, on every node."""
        return sum(node.delivery.log.count() for node in self.nodes.values())

    async def settle(self, router: RouterFlows | None = None, timeout_s: float = 10.0) -> None:
        """Waits until every delivery record is done and the router's hot-user transitions ran (it
        polls the registry as its poller would)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            if router is not None:
                await router.hot.refresh()
                await asyncio.gather(*router.hot._jobs.values(), return_exceptions=True)
            if not self.outstanding() and not (router and router.hot._jobs):
                if router is None:
                    return
                await router.hot.refresh()  # a last look: the final counts may start a transition
                if not router.hot._jobs:
                    return
            for node in self.nodes.values():
                node.delivery.wake(set())
            await asyncio.sleep(0.005)
        raise AssertionError(f"not settled: {self.outstanding()} delivery records left")

    async def close(self) -> None:
        await asyncio.gather(*(node.delivery.stop() for node in self.nodes.values()))

    def start_node(self, node_id: str) -> InmemNode:
        """An empty node that no map names yet (as `make node` starts one), at <id>.mem:1."""
        return self._serve(node_id, f"{node_id}.mem:1", empty_map(self.config))

    def router(self, cluster_map: ClusterMap | None = None) -> RouterFlows:
        """A router's flows over the twin; each router gets its own post-id generator."""
        self._routers += 1
        storage = StorageClient(cluster_map or initial_map(self.config), 1.0, self.transport)
        return RouterFlows.build(self.config, storage, PostIdGenerator(self._routers))

    def down(self, node_id: str) -> None:
        self.transport.unreachable.add(f"{node_id}.mem:1")

    def up(self, node_id: str) -> None:
        self.transport.unreachable.discard(f"{node_id}.mem:1")

    async def probe(self) -> None:
        """Every node health-checks every other once (as its failure detector's monitor would)."""
        for node in self.nodes.values():
            for address in self.transport.servicers:
                if await self.transport.serving(address, 1.0):
                    node.peers.health.succeeded(address)
                else:
                    node.peers.health.failed(address)

    async def replay_hints(self) -> None:
        """Every node sends its hints to every target that takes them now (as its replayer would)."""
        for node in self.nodes.values():
            for target in list(node.hints.counts):
                node.peers.health.succeeded(f"{target}.mem:1")  # as if the health check saw it back
                await node.replayer.replay(target)

    def holder_of(self, key: str) -> str:
        """The node whose servicer owns `key` now (by the nodes' own maps)."""
        owners = [n for n, node in self.nodes.items() if node.feed_store.partition(key) in node.servicer.owned]
        assert len(owners) == 1, owners
        return owners[0]
