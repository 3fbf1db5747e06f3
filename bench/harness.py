"""Load generation: client processes driving gRPC with many calls in flight, and the echo baseline.

Every figure is driven by the same harness: spawned processes (no gRPC state crosses a fork), each
an asyncio loop with `concurrency` calls in flight on one channel, recording per-call latency.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
from dataclasses import dataclass

import grpc

__all__ = ["Mix", "run_load", "start_echo_server", "ECHO_METHOD"]

ECHO_METHOD = "/bench.Echo/Echo"


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


def _zipf_index(rng: random.Random, n: int) -> int:
    """Heavy-tailed pick in [0, n): a few users are very active, most rarely."""
    return min(n - 1, int(n ** rng.random()) - 1)


async def _drive(job: Job) -> dict[str, list[float]]:
    from protos import feed_pb2, feed_pb2_grpc

    rng = random.Random(job.seed)
    latencies: dict[str, list[float]] = {"read": [], "post": [], "follow": [], "echo": [], "error": []}
    async with grpc.aio.insecure_channel(job.target) as channel:
        stub = feed_pb2_grpc.FeedStub(channel)
        echo = channel.unary_unary(ECHO_METHOD)
        deadline = time.perf_counter() + job.seconds

        async def one() -> None:
            while (now := time.perf_counter()) < deadline:
                try:
                    if job.kind == "echo":
                        await echo(b"x" * 64, timeout=5)
                        op = "echo"
                    else:
                        roll = rng.random()
                        if roll < job.mix.read:
                            if job.readers and rng.random() < 0.5:
                                reader = rng.choice(job.readers)
                            else:
                                reader = f"u{_zipf_index(rng, job.users)}"
                            await stub.GetTimeline(feed_pb2.GetTimelineRequest(user=reader), timeout=5)
                            op = "read"
                        elif roll < job.mix.read + job.mix.post:
                            author = f"u{_zipf_index(rng, job.users)}"
                            await stub.Post(feed_pb2.PostRequest(author=author, text="bench " * 8), timeout=5)
                            op = "post"
                        else:
                            a, b = f"u{rng.randrange(job.users)}", f"u{_zipf_index(rng, job.users)}"
                            if a != b:
                                if rng.random() < 0.5:
                                    await stub.Follow(feed_pb2.FollowRequest(follower=a, followee=b), timeout=5)
                                else:
                                    await stub.Unfollow(feed_pb2.UnfollowRequest(follower=a, followee=b), timeout=5)
                            op = "follow"
                    latencies[op].append(time.perf_counter() - now)
                except grpc.aio.AioRpcError:
                    latencies["error"].append(time.perf_counter() - now)

        await asyncio.gather(*(one() for _ in range(job.concurrency)))
    return latencies


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
) -> dict[str, list[float]]:
    """Runs `processes` client processes for `seconds`; returns every latency by operation."""
    jobs = [Job(target, kind, seconds, concurrency, mix, users, readers or [], seed) for seed in range(processes)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        results = pool.map(_worker, jobs)
    merged: dict[str, list[float]] = {}
    for result in results:
        for op, values in result.items():
            merged.setdefault(op, []).extend(values)
    return merged


def _serve_echo(port_queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    async def main() -> None:
        server = grpc.aio.server()
        handler = grpc.method_handlers_generic_handler(
            "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
        )
        server.add_generic_rpc_handlers((handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        port_queue.put(port)
        await server.wait_for_termination()

    asyncio.run(main())


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


def start_echo_server() -> tuple[multiprocessing.process.BaseProcess, str]:
    """A bare gRPC server in its own process, like the router: the same harness drives it."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_serve_echo, args=(queue,), daemon=True)
    process.start()
    return process, f"127.0.0.1:{queue.get(timeout=30)}"
