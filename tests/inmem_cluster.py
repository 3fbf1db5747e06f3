"""An in-memory twin of a feedring cluster, used only by unit tests (hashicorp/raft's InmemTransport).

N real nodes (node/build.py's wiring, over the in-memory Store) sit behind ``InmemTransport``,
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

from common.cluster_map import ClusterMap, initial_map
from common.config import ClusterConfig, HotUsers, Limits, NodeConfig, Replication, RouterConfig
from common.grpc_status import LAST_RESORT_KEY
from common.local_transport import call_stream, call_unary, rpc_error
from common.storage_client import StorageClient
from feed.post_ids import PostIdGenerator
from node.build import Node, build_node
from node.change_feed import ChangeFeed, ObservedStore
from node.store import MemoryStore
from node.timeline_cache import TimelineCache
from router.flows import RouterFlows

__all__ = ["InmemTransport", "InmemCluster", "make_config", "build_inmem_node"]

Resp = TypeVar("Resp", bound=Message)


def _copy(message: Message, into: type[Resp]) -> Resp:
    return into.FromString(message.SerializeToString())


class InmemTransport:
    def __init__(self) -> None:
        self.services: dict[str, dict[str, Any]] = {}  # address -> a node's Storage handlers
        self.unreachable: set[str] = set()
        self.calls: Counter[tuple[str, str]] = Counter()  # (address, method) -> calls

    def _handler(self, address: str, method: str) -> Any:
        handlers = self.services.get(address)
        if handlers is None or address in self.unreachable:
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, f"failed to connect to all addresses; last error: {address}")
        self.calls[(address, method)] += 1
        return handlers[method]

    async def unary(
        self,
        address: str,
        method: str,
        request: Message,
        response: type[Resp],
        timeout_s: float,
        wait: bool,
        last_resort: bool = False,
    ) -> Resp:
        metadata = ((LAST_RESORT_KEY, "1"),) if last_resort else ()
        reply = await call_unary(self._handler(address, method), _copy(request, type(request)), metadata)
        return _copy(reply, response)

    async def stream(
        self, address: str, method: str, request: Message, response: type[Resp], timeout_s: float | None
    ) -> AsyncIterator[Resp]:
        async for item in call_stream(self._handler(address, method), _copy(request, type(request))):
            yield _copy(item, response)

    async def serving(self, address: str, timeout_s: float, service: str = "") -> bool:
        return address in self.services and address not in self.unreachable

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
        limits=Limits(timeline_cap=100, rpc_timeout_s=1.0),
        replication=Replication(repair_interval_s=0.0),
        hot=HotUsers(**hot),
    )


def build_inmem_node(
    config: ClusterConfig, node_id: str, transport: InmemTransport, store: ObservedStore | None = None
) -> Node:
    """One node, at <id>.mem:1: the real node wiring over an in-memory store (a restart passes the old one)."""
    store = store or ObservedStore(MemoryStore(), ChangeFeed(), TimelineCache(config.storage.timeline_cache))
    node = build_node(config, node_id, f"{node_id}.mem:1", store, transport, delivery_page=16)
    node.load()
    return node


class InmemCluster:
    def __init__(self, config: ClusterConfig) -> None:
        """Build inside the running event loop: every node starts delivering at once."""
        self.config = config
        self.transport = InmemTransport()
        self.nodes: dict[str, Node] = {}
        for node in config.nodes:
            self._serve(node.id, node.address, config)
        self._routers = 0

    def _serve(self, node_id: str, address: str, config: ClusterConfig) -> Node:
        node = self.nodes[node_id] = build_inmem_node(config, node_id, self.transport)
        self.transport.services[address] = node.handlers
        node.delivery.start()
        return node

    def restart(self, node_id: str) -> Node:
        """The node's process dies and comes back over the same store: in-memory state (its delivery
        loop, counters) is new, what is on "disk" is not."""
        old = self.nodes[node_id]
        asyncio.get_running_loop().create_task(old.delivery.stop())
        node = build_inmem_node(self.config, node_id, self.transport, store=old.store)
        self.nodes[node_id] = node
        self.transport.services[f"{node_id}.mem:1"] = node.handlers
        node.delivery.start()
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
                node.records_written.note(())
            await asyncio.sleep(0.005)
        raise AssertionError(f"not settled: {self.outstanding()} delivery records left")

    async def close(self) -> None:
        await asyncio.gather(*(node.delivery.stop() for node in self.nodes.values()))

    def start_node(self, node_id: str) -> Node:
        """An empty node that no map names yet (as `make node` starts one), at <id>.mem:1."""
        return self._serve(node_id, f"{node_id}.mem:1", self.config)

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
            for address in self.transport.services:
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
        owners = [n for n, node in self.nodes.items() if node.data.partition(key) in node.ownership.owned]
        assert len(owners) == 1, owners
        return owners[0]
