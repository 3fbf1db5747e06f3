"""Live timelines (WatchTimeline) against real processes: what an open app would check.

The set check of Jepsen, for streams: writers record every post the cluster acknowledged (and every
delete), watchers record every post their streams gave them; after a kill -9 of a node serving
streams and a node added under load, every acknowledged post that was not deleted must have reached
every open stream of every follower (and its author's own) exactly once, and nothing else may have.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import grpc
import pytest

from client import AsyncFeedClient, FeedClient, Post, Removed
from common import security
from common.errors import FeedringError
from common.grpc_status import LAST_RESORT_KEY
from ops.local_cluster import PROJECT_ROOT
from protos import admin_pb2, feed_pb2, feed_pb2_grpc, storage_pb2, storage_pb2_grpc
from tests.integration.conftest import ClusterHandle, start_cluster, wait_settled
from tests.integration.test_membership import change, start_extra_feed_node
from tests.support import eventually


def test_a_watch_gets_new_posts_own_posts_and_removals_with_either_client(cluster: ClusterHandle) -> None:
    tag = str(time.time_ns())
    reader, author = f"watcher-{tag}", f"watched-{tag}"
    client = cluster.client()
    client.follow(reader, author)
    got: list[Post | Removed] = []
    stream = client.watch_timeline(reader, removals=True)
    taker = threading.Thread(target=lambda: [got.append(e) for e in stream], daemon=True)
    taker.start()
    time.sleep(0.5)  # the stream is open
    posts = [client.post(author, "one"), client.post(reader, "my own"), client.post(author, "two")]
    eventually(lambda: _assert(sorted(p.id for p in got if isinstance(p, Post)) == [p.id for p in posts]))
    client.delete_post(author, posts[0].id)
    eventually(lambda: _assert(Removed(posts[0].id) in got))
    client.close()  # ends the watch
    taker.join(timeout=5)
    assert not taker.is_alive()

    async def with_async_client() -> list[int]:
        async with AsyncFeedClient(cluster.router_address, token=cluster.local.secret) as feed:
            out = []
            async for post in feed.watch_timeline(reader, after_id=posts[0].id):
                out.append(post.id)
                if len(out) == 2:
                    return out
        return out

    assert asyncio.run(asyncio.wait_for(with_async_client(), 20)) == [p.id for p in posts[1:]]  # resumed from an id


def test_the_cli_follows_a_timeline_until_ctrl_c(cluster: ClusterHandle) -> None:
    tag = str(time.time_ns())
    reader, author = f"tail-{tag}", f"tailed-{tag}"
    client = cluster.client()
    client.follow(reader, author)
    first = client.post(author, "already there")
    eventually(lambda: _assert([p.id for p in client.timeline(reader).items] == [first.id]))
    cli = subprocess.Popen(
        [sys.executable, "-m", "client.cli", "--config", str(cluster.path), "timeline", reader, "--follow", "--json"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert cli.stdout is not None
        assert str(first.id) in cli.stdout.readline()  # the first page
        new = client.post(author, "arrives live")
        assert f'"id": {new.id}' in cli.stdout.readline()
        cli.send_signal(signal.SIGINT)
        assert cli.wait(timeout=10) == 0, cli.stderr.read() if cli.stderr else ""
    finally:
        cli.kill()


def test_a_reader_that_stops_reading_is_cut_off_with_a_status_and_its_slot_given_back(tmp_path: Path) -> None:
    limits = {"watch_stall_s": 0.5, "max_watch_streams": 1, "post_max_bytes": 4000}
    handle = start_cluster(tmp_path, nodes=1, partitions=8, replication_factor=1, limits=limits)
    try:
        client = handle.client()
        client.follow("stopped", "loud")
        first = client.post("loud", "read")
        # A reader with a tiny receive window that takes one event, then none.
        options = [("grpc.http2.lookahead_bytes", 1024), ("grpc.http2.bdp_probe", 0)]
        with grpc.insecure_channel(handle.config.nodes[0].feed, options=options) as channel:
            stub = feed_pb2_grpc.FeedStub(channel)
            request = feed_pb2.WatchTimelineRequest(user="stopped", after_id=first.id - 1)
            stream = stub.WatchTimeline(request, timeout=30)
            assert next(stream).post.id == first.id
            with pytest.raises(grpc.RpcError) as full:  # one stream per process here
                next(stub.WatchTimeline(request, timeout=10))
            assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "max_watch_streams" in full.value.details()
            for _ in range(20):
                client.post("loud", "x" * 3000)
            time.sleep(1.5)
            with pytest.raises(grpc.RpcError) as cut:
                list(stream)
            assert cut.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert f"resume with after_id={first.id}" in cut.value.details()
            again = stub.WatchTimeline(feed_pb2.WatchTimelineRequest(user="stopped", after_id=first.id), timeout=10)
            assert next(again).post.text == "x" * 3000  # the slot is free again, and nothing was lost
            again.cancel()
    finally:
        handle.stop()


# -- the set check under faults ------------------------------------------------------------------------

AUTHORS = [f"author{i}" for i in range(12)]
READERS = [f"reader{i}" for i in range(60)] + AUTHORS[:6]  # some authors watch their own timelines
STREAMS = 200


class Writers:
    """Three writers posting (and now and then deleting their last post), recording acknowledgements."""

    def __init__(self, handle: ClusterHandle) -> None:
        self.clients = [handle.client(timeout_s=15.0) for _ in range(3)]
        self.acked: dict[int, str] = {}  # post id -> author
        self.deleted: set[int] = set()
        self.unknown: set[int] = set()  # a delete that failed: the post may or may not be gone
        self.unknown_posts: set[tuple[str, str]] = set()  # (author, text) of a Post that failed: stored or not
        self.acked_as: dict[tuple[str, str], int] = {}  # (author, text) -> the id its Post was acknowledged with
        self.failures = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(c, i), daemon=True) for i, c in enumerate(self.clients)
        ]

    def __enter__(self) -> Writers:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, client: FeedClient, n: int) -> None:
        rng = random.Random(n)
        i = 0
        while not self._stop.is_set():
            author = rng.choice(AUTHORS)
            text = f"w{n}-{i}"
            try:
                self.unknown_posts.add((author, text))
                post = client.post(author, text)
                self.unknown_posts.discard((author, text))
                self.acked[post.id] = author
                self.acked_as[(author, text)] = post.id
                if i % 10 == 9:
                    self.unknown.add(post.id)
                    client.delete_post(author, post.id)
                    self.unknown.discard(post.id)
                    self.deleted.add(post.id)
            except FeedringError:
                self.failures += 1
            i += 1
            time.sleep(0.01)


class Watchers:
    """STREAMS watch streams over READERS, on one event loop, each recording the posts it was given."""

    def __init__(self, address: str, token: str, rng: random.Random) -> None:
        self.users = [rng.choice(READERS) for _ in range(STREAMS)]
        self.got: list[list[int]] = [[] for _ in range(STREAMS)]
        self.removed: list[set[int]] = [set() for _ in range(STREAMS)]
        self.posts: dict[int, tuple[str, str]] = {}  # every post a stream was given: (author, text)
        self.errors: list[str] = []
        self.open = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._main = asyncio.run_coroutine_threadsafe(self._watch_all(address, token), self._loop)

    async def _watch_all(self, address: str, token: str) -> None:
        async with AsyncFeedClient(address, token=token, timeout_s=15.0) as feed:
            tasks = [asyncio.create_task(self._watch(feed, i)) for i in range(STREAMS)]
            await asyncio.sleep(2.0)  # every stream has found its newest entry and opened
            self.open.set()
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()

    async def _watch(self, feed: AsyncFeedClient, i: int) -> None:
        try:
            async for event in feed.watch_timeline(self.users[i], removals=True):
                if isinstance(event, Removed):
                    self.removed[i].add(event.post_id)
                else:
                    self.got[i].append(event.id)
                    self.posts[event.id] = (event.author, event.text)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a watch that gave up: the check reports it
            self.errors.append(f"stream {i} of {self.users[i]}: {exc!r}")

    def close(self) -> None:
        self._main.cancel()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


def test_every_acknowledged_post_reaches_every_open_watcher_once_through_a_kill_and_a_node_added(
    tmp_path: Path,
) -> None:
    handle = start_cluster(tmp_path, partitions=128)
    watchers = None
    try:
        rng = random.Random(7)
        admin = handle.client(timeout_s=30.0)
        follows = {r: set(rng.sample([a for a in AUTHORS if a != r], 3)) for r in READERS}
        admin.bulk_follow([(r, a) for r, followees in follows.items() for a in followees])
        wait_settled(admin)
        watchers = Watchers(handle.router_address, handle.local.secret, rng)
        assert watchers.open.wait(30)
        with Writers(handle) as writers:
            time.sleep(2.0)
            handle.kill("n2")  # kill -9: the streams it served resume on another replica
            time.sleep(3.0)
            handle.local.start_process("n2")
            eventually(lambda: _assert(all(n.healthy for n in admin.cluster_status().nodes)), timeout_s=30)
            address, feed = start_extra_feed_node(handle, "n4")
            progress = change(handle, admin_pb2.ChangeMembershipRequest.ADD, "n4", address, feed_address=feed)
            assert progress[-1].phase == "DONE", progress[-1].message
            time.sleep(1.0)
        wait_settled(admin)
        assert len(writers.acked) > 100 and not watchers.errors, watchers.errors[:3]
        live = {i: a for i, a in writers.acked.items() if i not in writers.deleted and i not in writers.unknown}
        wanted: dict[str, set[int]] = defaultdict(set)
        for post_id, author in live.items():
            for reader in READERS:
                if author in follows[reader] or author == reader:
                    wanted[reader].add(post_id)
        started = min(writers.acked)
        storage = {n.id: n.address for n in handle.config.nodes} | {"n4": address}

        def every_stream_has_everything() -> None:
            for i, user in enumerate(watchers.users):
                got = [p for p in watchers.got[i] if p >= started]
                repeats = [p for p, n in Counter(got).items() if n > 1]
                assert not repeats, f"stream {i} of {user} got {repeats[:3]} twice"
                missing = wanted[user] - set(got)
                assert not missing, (
                    f"stream {i} of {user} misses {len(missing)} posts, e.g. {sorted(missing)[:3]}; "
                    + _where_the_first_is(admin, user, min(missing), got, storage, handle.local.secret)
                )
                # A post whose Post call failed may have been stored (its outcome is unknown): it
                # may show, from a followee. So may an earlier attempt of an acknowledged Post (its
                # coordinator killed, the retry stored it again under a new id), if the stream then
                # removed it: the later attempt replaces it everywhere (node/posts.py). Nothing else.
                superseded = {
                    p for p in got if p not in writers.acked and writers.acked_as.get(watchers.posts[p], p) != p
                }
                strangers = [  # (id, (author, text), the id its text was acknowledged as, removed?)
                    (p, watchers.posts[p], writers.acked_as.get(watchers.posts[p]), p in watchers.removed[i])
                    for p in got
                    if watchers.posts[p][0] not in follows[user] | {user}
                    or (
                        p not in writers.acked
                        and watchers.posts[p] not in writers.unknown_posts
                        and not (p in superseded and p in watchers.removed[i])
                    )
                ]
                assert not strangers, f"stream {i} of {user} got posts it should not: {strangers[:3]}"
                assert watchers.removed[i] <= writers.deleted | writers.unknown | superseded

        eventually(every_stream_has_everything, timeout_s=30.0, interval_s=0.5)
    finally:
        if watchers is not None:
            watchers.close()
        handle.stop()


def _where_the_first_is(
    client: FeedClient, user: str, post_id: int, got: list[int], storage: dict[str, str], secret: str
) -> str:
    """For a failure message: is the missed post in the user's timeline now (a delivery lost, or a
    stream that did not send it), in which replica's copy of the inbox, and how late it would have
    landed for the stream's 30 s look-back."""
    timeline = {p.id for p in client.timeline(user, page_size=200).items}
    cluster_map = client.cluster_map()
    replicas = cluster_map.replicas(cluster_map.partition(user))
    held = {}
    for name in replicas:  # each replica's own copy, as its Storage API reads it
        with grpc.insecure_channel(storage[name]) as channel:
            reply = storage_pb2_grpc.StorageStub(channel).ReadInbox(
                storage_pb2.ReadInboxRequest(epoch=cluster_map.epoch, consumer=user, limit=800),
                timeout=10,
                metadata=(*security.bearer(secret), (LAST_RESORT_KEY, "1")),
            )
        held[name] = post_id in {feed_pb2.Post.FromString(raw).id for raw in reply.posts}
    newer = [p for p in got if p > post_id]
    return (
        f"{post_id} is {'' if post_id in timeline else 'NOT '}in {user}'s timeline; in each replica's inbox: {held}; "
        f"the stream got {len(newer)} newer posts, the newest {(max(newer) - post_id) >> 22 if newer else 0} ms newer"
    )


def _assert(condition: bool) -> None:
    assert condition
