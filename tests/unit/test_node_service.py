"""A node's Storage service on a real in-process gRPC server (port 0): ownership, errors, happy path.
The node is built as a node process builds it (node/build.py), over the in-memory store, alone."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from common.cluster_map import ClusterMap, Member, build_table
from common.grpc_status import EPOCH_METADATA_KEY
from common.service_handlers import add_service
from node.build import STORAGE_SERVICE, build_node
from node.store import MemoryStore
from protos import feed_pb2, storage_pb2, storage_pb2_grpc
from tests.inmem_cluster import InmemTransport, make_config

PARTITIONS = 16


def run(scenario):  # type: ignore[no-untyped-def]
    async def main() -> None:
        members = (Member("n1", "a"), Member("n2", "b"))
        cluster_map = ClusterMap(4, PARTITIONS, 1, 160, members, build_table(members, PARTITIONS, 1, 160))
        node = build_node(make_config(nodes=2, partitions=PARTITIONS), "n1", "a", MemoryStore(), InmemTransport())
        node.ownership.adopt(cluster_map)
        server = grpc.aio.server()
        add_service(server, STORAGE_SERVICE, node.handlers)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                await scenario(storage_pb2_grpc.StorageStub(channel), cluster_map)
        finally:
            await server.stop(None)

    asyncio.run(main())


def user_on(cluster_map: ClusterMap, node: str) -> str:
    return next(f"u{i}" for i in range(1000) if cluster_map.primary_for_key(f"u{i}") == node)


def test_a_key_of_another_node_is_refused_with_the_epoch() -> None:
    async def scenario(stub, cluster_map):  # type: ignore[no-untyped-def]
        foreign = user_on(cluster_map, "n2")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ReadInbox(storage_pb2.ReadInboxRequest(consumer=foreign, limit=5))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "epoch 4" in err.value.details()
        assert (EPOCH_METADATA_KEY, "4") in tuple(err.value.trailing_metadata())

    run(scenario)


def test_a_missing_post_is_said_and_a_bad_direction_refused() -> None:
    async def scenario(stub, cluster_map):  # type: ignore[no-untyped-def]
        mine = user_on(cluster_map, "n1")
        removed = await stub.RemovePost(storage_pb2.RemovePostRequest(author_key=mine, post_id=42))
        assert not removed.HasField("post")  # not here (its tombstone is, from now on)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ListEdges(storage_pb2.ListEdgesRequest(user_key=mine, limit=5))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    run(scenario)


def test_store_post_writes_the_post_and_the_delivery_it_owes_once() -> None:
    async def scenario(stub, cluster_map):  # type: ignore[no-untyped-def]
        author = user_on(cluster_map, "n1")
        await stub.AddFollower(storage_pb2.AddFollowerRequest(followee_key=author, follower="fan", author=author))
        reply = await stub.StorePost(
            storage_pb2.StorePostRequest(author_key=author, post=feed_pb2.Post(id=7, author=author, text="hi"))
        )
        assert reply.created and reply.state == storage_pb2.NORMAL
        again = await stub.StorePost(
            storage_pb2.StorePostRequest(author_key=author, post=feed_pb2.Post(id=7, author=author, text="hi"))
        )
        assert not again.created  # a retry changes nothing
        status = await stub.GetNodeStatus(storage_pb2.GetNodeStatusRequest())
        # The node's delivery driver is not started here: the one record waits, on disk.
        assert status.keys_by_family["posts"] == 1 and status.keys_by_family["deliveries"] == 1

    run(scenario)


def test_a_sealed_partition_refuses_writes_but_serves_reads() -> None:
    async def scenario(stub, cluster_map):  # type: ignore[no-untyped-def]
        user = user_on(cluster_map, "n1")
        await stub.SealPartitions(storage_pb2.SealPartitionsRequest(partitions=[cluster_map.partition(user)]))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.AddFollowing(storage_pb2.AddFollowingRequest(follower=user, followee="x"))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "handed over" in err.value.details()
        await stub.ReadInbox(storage_pb2.ReadInboxRequest(consumer=user, limit=5))

    run(scenario)
