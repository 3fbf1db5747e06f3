"""Load generation: client processes driving gRPC with many calls in flight, and the echo and relay
baselines.

Every figure is driven by the same harness: spawned processes (no gRPC state crosses a fork), each
an asyncio loop with `concurrency` calls in flight on one channel, recording per-call latency.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

import grpc

__all__ = ["Mix", "run_load", "start_echo_server", "ECHO_METHOD"]

ECHO_METHOD = "/bench.Echo/Echo"
CONNECTIONS_PER_PROCESS = 4


@dataclass(frozen=True)
class Mix:
    read: float = 0.90
    post: float = 0.08
    follow: float = 0.02


@dataclass(frozen=True)
class Job:
    target: str
    kind: str  # "echo" or "feed"
    seconds: float
    concurrency: int
    mix: Mix
    users: int  # synthetic users u0..u{users-1}
    readers: list[str]  # extra reader names (e.g. users following hot authors)
    seed: int
    rate: float = 0.0  # open loop: operations per second from this process (0: closed loop)
    readers_share: float = 0.5  # of reads, the share that picks from `readers`
    direct: bool = False  # map-aware: each call to a node holding its key (one hop), not to `target`
    spread: tuple[str, ...] = ()  # servers to spread the calls over as over a key's replicas (not `target`)


def _zipf_index(rng: random.Random, n: int) -> int:
    """Heavy-tailed pick in [0, n): a few users are very active, most rarely."""
    return min(n - 1, int(n ** rng.random()) - 1)


async def _drive(job: Job) -> dict[str, list[float]]:
    from protos import feed_pb2, feed_pb2_grpc

    rng = random.Random(job.seed)
    latencies: dict[str, list[float]] = defaultdict(list)  # op -> latencies; op_at -> start offsets
    # Several connections per process, as an app server would hold: a router's workers share its
    # port (SO_REUSEPORT) by connection, so one connection per process could leave a worker idle.
    channels = [
        grpc.aio.insecure_channel(job.target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(CONNECTIONS_PER_PROCESS)
    ]
    stubs = [feed_pb2_grpc.FeedStub(c) for c in channels]
    echoes = [c.unary_unary(ECHO_METHOD) for c in channels]
    if job.direct:
        route = await _router_of_keys(job, stubs[0], channels)
    elif job.spread:
        servers = list(job.spread)  # every server holds every key: each key's "replicas"
        route = _router_over(job, servers, lambda key: servers, channels)
    else:
        route = None
    started = time.perf_counter()
    latencies["started_wall"].append(time.time())  # offsets ("<op>_at") are from here: the caller may line them up
    deadline = started + job.seconds

    async def op(now: float, connection: int) -> None:
        """One operation; its latency counts from `now` (an open loop's scheduled start)."""
        stub = stubs[connection % len(stubs)]
        try:
            if job.kind == "echo":
                await echoes[connection % len(echoes)](b"x" * 64, timeout=5)
                name = "echo"
            else:
                roll = rng.random()
                if roll < job.mix.read:
                    if job.readers and rng.random() < job.readers_share:
                        reader = rng.choice(job.readers)
                    else:
                        reader = f"u{_zipf_index(rng, job.users)}"
                    stub, sending = route(reader, connection, True) if route else (stub, nullcontext())
                    with sending:
                        await stub.GetTimeline(feed_pb2.GetTimelineRequest(user=reader), timeout=5)
                    name = "read"
                elif roll < job.mix.read + job.mix.post:
                    author = f"u{_zipf_index(rng, job.users)}"
                    stub, sending = route(author, connection, False) if route else (stub, nullcontext())
                    with sending:
                        await stub.Post(feed_pb2.PostRequest(author=author, text="bench " * 8), timeout=5)
                    name = "post"
                else:
                    a, b = f"u{rng.randrange(job.users)}", f"u{_zipf_index(rng, job.users)}"
                    stub, sending = route(a, connection, False) if route else (stub, nullcontext())
                    if a != b:
                        with sending:
                            if rng.random() < 0.5:
                                await stub.Follow(feed_pb2.FollowRequest(follower=a, followee=b), timeout=5)
                            else:
                                await stub.Unfollow(feed_pb2.UnfollowRequest(follower=a, followee=b), timeout=5)
                    name = "follow"
            latencies[name].append(time.perf_counter() - now)
            latencies[name + "_at"].append(now - started)
        except grpc.aio.AioRpcError:
            latencies["error"].append(time.perf_counter() - now)

    async def closed_loop(connection: int) -> None:
        while (now := time.perf_counter()) < deadline:
            await op(now, connection)

    async def open_loop() -> None:
        """Starts operations on a fixed schedule whatever the answers' pace (a real service's
        arrivals); latency is from the scheduled start, so a stall is never hidden."""
        gap = 1.0 / job.rate
        scheduled = started + rng.random() * gap
        running: set[asyncio.Task[None]] = set()
        issued = 0
        while scheduled < deadline:
            await asyncio.sleep(max(scheduled - time.perf_counter(), 0.0))
            if len(running) < job.concurrency:
                task = asyncio.create_task(op(scheduled, issued))
                running.add(task)
                task.add_done_callback(running.discard)
                issued += 1
            else:
                latencies["dropped"].append(0.0)  # more than `concurrency` calls outstanding
            scheduled += gap
        await asyncio.gather(*running)

    try:
        if job.rate:
            await open_loop()
        else:
            await asyncio.gather(*(closed_loop(i) for i in range(job.concurrency)))
    finally:
        await asyncio.gather(*(c.close() for c in channels))
    return dict(latencies)


async def _router_of_keys(
    job: Job, entry: Any, channels: list[grpc.aio.Channel]
) -> Callable[[str, int, bool], tuple[Any, AbstractContextManager[None]]]:
    """Map-aware routing as FeedClient does it (client/routing.py): the routing map from `target`,
    then `CONNECTIONS_PER_PROCESS` connections to each node's Feed API; a read goes to the replica
    FeedClient would send it to, a write to the primary. Returns the stub and a context to send
    the call in: every call counts as outstanding while it runs, as in FeedClient, so a read beside
    a write in flight spreads by key as FeedClient's would."""
    from client.routing import RoutingTable
    from protos import feed_pb2

    table = RoutingTable.from_proto(await entry.GetRoutingMap(feed_pb2.GetRoutingMapRequest(), timeout=5))
    return _router_over(job, table.all_addresses(), table.replicas, channels)


def _router_over(
    job: Job, addresses: list[str], replicas: Callable[[str], list[str]], channels: list[grpc.aio.Channel]
) -> Callable[[str, int, bool], tuple[Any, AbstractContextManager[None]]]:
    """Calls spread over `addresses` as FeedClient spreads them over a key's `replicas`."""
    from client.routing import Spread
    from protos import feed_pb2_grpc

    spread = Spread(salt=job.seed)
    by_address: dict[str, list[Any]] = {}
    for address in addresses:
        node_channels = [grpc.aio.insecure_channel(address) for _ in range(CONNECTIONS_PER_PROCESS)]
        channels.extend(node_channels)
        by_address[address] = [feed_pb2_grpc.FeedStub(c) for c in node_channels]

    def route(key: str, connection: int, read: bool) -> tuple[Any, AbstractContextManager[None]]:
        address = spread.order(key, replicas(key), read)[0]
        node_stubs = by_address[address]
        return node_stubs[connection % len(node_stubs)], spread.sending()

    return route


def _worker(job: Job) -> dict[str, list[float]]:
    return asyncio.run(_drive(job))


def run_load(
    target: str,
    kind: str,
    seconds: float,
    processes: int,
    concurrency: int,
    mix: Mix = Mix(),
    users: int = 1,
    readers: list[str] | None = None,
    rate: float = 0.0,
    readers_share: float = 0.5,
    direct: bool = False,
    spread: list[str] | None = None,
) -> dict[str, list[float]]:
    """Runs `processes` client processes for `seconds`; returns every latency by operation ("read",
    "post", ...), when each started ("read_at", seconds into the run) and failures ("error").
    `rate` > 0: an open loop of `rate` operations per second in all, at most `concurrency`
    outstanding per process (past that an arrival is counted in "dropped"). A read picks its
    reader from `readers` with probability `readers_share`, else a Zipf-chosen synthetic user.
    `direct`: each call goes to a node holding its key (map-aware, one hop) instead of `target`;
    `spread`: each call goes to one of these servers, as a map-aware client picks among a key's
    replicas when every server holds every key."""
    jobs = [
        Job(target, kind, seconds, concurrency, mix, users, readers or [], seed, rate / processes, readers_share)
        for seed in range(processes)
    ]
    jobs = [replace(job, direct=direct, spread=tuple(spread or ())) for job in jobs]
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        results = pool.map(_worker, jobs)
    merged: dict[str, list[float]] = {}
    for result in results:
        for op, values in result.items():
            merged.setdefault(op, []).extend(values)
    return merged


def _serve_echo(
    port_queue: multiprocessing.Queue,  # type: ignore[type-arg]
    upstream: str | None = None,
    leveldb: str | None = None,
    page: bool = False,
) -> None:
    """A bare echo server; with `upstream`, a bare relay that forwards each call's bytes there and
    its reply back: two hops with nothing but gRPC in them, the floor of a router -> node read; with
    `leveldb` (a directory), an echo that reads one key from LevelDB first: the floor of a one-hop
    read from a node; with `page`, the Feed API as feedring serves it (_serve_page)."""
    if page:
        asyncio.run(_serve_page(port_queue))
        return

    async def main() -> None:
        server = grpc.aio.server()
        if leveldb is not None:
            import plyvel

            db = plyvel.DB(leveldb, create_if_missing=True, bloom_filter_bits=10)
            for i in range(10_000):
                db.put(f"key{i}".encode(), b"v" * 200)
            get, counter = db.get, iter(range(1 << 62))

            async def handler_fn(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
                get(f"key{next(counter) % 10_000}".encode())
                return request

        elif upstream is None:
            handler_fn = _echo
        else:
            channel = grpc.aio.insecure_channel(upstream)
            forward = channel.unary_unary(ECHO_METHOD)

            async def handler_fn(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
                return await forward(request, timeout=5)  # type: ignore[no-any-return]

        handler = grpc.method_handlers_generic_handler(
            "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(handler_fn)}
        )
        server.add_generic_rpc_handlers((handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        port_queue.put(port)
        await server.wait_for_termination()

    asyncio.run(main())


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def _serve_page(port_queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """feedring's public server (feed/public_server.py: its options, call guards, epoch note, reply
    serializer) answering every GetTimeline with the same page of 20 stored posts, built once: a
    one-hop timeline read with no feedring read in it. What is left between it and the echo is the
    price of the Feed API's wire (a typed request, a 20-post reply) and its guards; what is left
    between a map-aware read and it is the node's own work per read."""
    from pathlib import Path

    from common.config import ClusterConfig
    from common.security import Credentials
    from common.service_handlers import add_service
    from feed.public_server import FEED_SERVICE, public_server
    from protos import feed_pb2, storage_pb2

    config = ClusterConfig(Path("bench"), "floor", 1, 1, 1, Path("."), (), ())
    posts = [
        feed_pb2.Post(
            id=7_400_000_000_000_000_000 + i, author=f"u{i}", text="bench " * 8, created_at_ms=1_765_000_000_000
        )
        for i in range(config.limits.page_size_default)
    ]
    reply = storage_pb2.EncodedPostPage(posts=[p.SerializeToString() for p in posts], next_page_token="x" * 40)

    async def timeline(request: Any, context: grpc.aio.ServicerContext) -> storage_pb2.EncodedPostPage:
        return reply

    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the page floor serves GetTimeline only")

    guarded = public_server(config, Credentials("", frozenset(), False), with_metrics=False, map_epoch=lambda: 1)
    add_service(
        guarded, FEED_SERVICE, {m.name: timeline if m.name == "GetTimeline" else refuse for m in FEED_SERVICE.methods}
    )
    port = guarded.server.add_insecure_port("127.0.0.1:0")
    await guarded.server.start()
    port_queue.put(port)
    await guarded.server.wait_for_termination()


def start_echo_server(
    upstream: str | None = None, leveldb: str | None = None, page: bool = False
) -> tuple[multiprocessing.process.BaseProcess, str]:
    """A bare gRPC server in its own process, like the router: the same harness drives it. With
    `upstream` (another echo server's address) it relays every call there: the two-hop baseline;
    with `leveldb` (a directory) it reads a LevelDB key per call: the one-hop baseline; with `page`
    it is the Feed API answering a fixed timeline page (_serve_page): the one-hop read's wire floor."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_serve_echo, args=(queue, upstream, leveldb, page), daemon=True)
    process.start()
    return process, f"127.0.0.1:{queue.get(timeout=30)}"
