"""Finished-delivery notes (node/finish_notes.py) on the in-memory twin: the records a driver
finishes leave every replica, told many at a time, each replica only of its own partitions."""

from __future__ import annotations

import asyncio
from typing import Any

from common import post_bytes
from node import writes
from protos import storage_pb2
from router.flows import RouterFlows
from tests.inmem_cluster import InmemCluster, make_config


async def timeline(router: RouterFlows, user: str) -> list[str]:
    return [p.text for p in post_bytes.decode(await router.timeline.read(user, 100, 0))]


def test_a_batch_of_notes_is_cut_to_the_partitions_a_replica_holds() -> None:
    done = [storage_pb2.FinishedDelivery(author_key=a, post_id=i) for i, a in enumerate(["ann", "bob", "ann", "cy"])]
    request = storage_pb2.FinishDeliveriesRequest(epoch=4, finished=done)
    assert writes.FINISH_DELIVERIES.keys(request) == ["ann", "bob", "cy"]
    part = writes.FINISH_DELIVERIES.limited(request, ["ann", "cy"])
    assert [(f.author_key, f.post_id) for f in part.finished] == [("ann", 0), ("ann", 2), ("cy", 3)]
    assert part.epoch == 4 and len(request.finished) == 4  # the original is untouched


def test_records_finished_together_leave_every_replica_in_a_few_calls() -> None:
    # Four nodes, three copies: partitions have different replica sets, so one batch of notes spans
    # partitions that some of its receivers do not hold.
    async def scenario() -> None:
        cluster = InmemCluster(make_config(nodes=4, partitions=16, replication_factor=3))
        notes_calls: list[int] = []  # notes per ApplyWrites call that carried any
        unary = cluster.transport.unary

        async def counting(address: str, method: str, request: Any, *args: Any, **kwargs: Any) -> Any:
            if method == "ApplyWrites":
                finished = [w for w in request.writes if w.method == "FinishDeliveries"]
                if finished:
                    notes_calls.append(sum(len(writes.FINISH_DELIVERIES.parse(w.request).finished) for w in finished))
            return await unary(address, method, request, *args, **kwargs)

        cluster.transport.unary = counting  # type: ignore[method-assign]
        router = cluster.router()
        authors = [f"author{i}" for i in range(40)]
        for author in authors:
            await router.follows.follow(f"fan-of-{author}", author)
        await asyncio.gather(*(router.posts.post(a, "hello") for a in authors))
        deadline = asyncio.get_running_loop().time() + 2.0  # well before any orphan check (10 s)
        while cluster.outstanding():
            assert asyncio.get_running_loop().time() < deadline, "a replica still holds a finished record"
            await asyncio.sleep(0.01)
        # Every record was on three replicas and finished by one: two notes each reached the others,
        # in a few calls (one call per record and replica before).
        assert sum(notes_calls) >= 2 * len(authors) and len(notes_calls) <= 16, notes_calls
        for author in authors:
            assert await timeline(router, f"fan-of-{author}") == ["hello"]
        await cluster.close()

    asyncio.run(scenario())
