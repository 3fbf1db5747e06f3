"""Replicated writes, coordinated by the node that takes them (Dynamo's coordinator).

A write arrives at one replica of its partition (the router sends it to the first one it believes
up) or starts on a node itself (a delivery writing followers' inboxes). The coordinator applies the
write to its own store if it holds the keys, forwards it to every other replica — and to a node
receiving the partition in a membership change — in parallel, and answers as soon as
`write_quorum` replicas of every partition the write touches have it (only current replicas count
towards the quorum; a pending one just gets the write); a fan-out page, which is checkpointed as
delivered when it returns, also keeps a provisional durable hint here for each replica still
writing it (node/hints.py). A replica that
fails, times out, or that the failure detector already believes down gets a durable hint on this
node instead (node/hints.py), also for answers that arrive after the caller was answered. A write that cannot
reach a quorum fails with UNAVAILABLE (or a wrong-owner answer, which makes the caller retry with a
newer map): it may still have reached some replicas, and hints and repair finish it — the caller
sees an unknown outcome, never a lost acknowledged write.

Writes are idempotent and order-independent on every replica (keys carry post ids; edges and the
registry carry versions stamped here once, node/versioned.py; deletes leave tombstones), so a
write applied twice, late, or out of order converges to the same data everywhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from common.errors import FeedringError, Unavailable, WrongEpoch, error_for_code
from common.storage_client import StorageClient
from common.versions import VersionClock
from node.clock_skew import ClockSkew
from node.hints import HintLog
from node.local_writes import LocalWrites
from node.outbox import Outboxes
from node.store import DiskWriteError
from node.writes import FanoutWrite, ReplicatedWrite
from protos import storage_pb2

__all__ = ["Replicator", "RESTAMPS"]

RESTAMPS = 3  # rounds a versioned write is stamped again before it is answered as it stands

log = logging.getLogger(__name__)

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


class _Outcome(Generic[Resp]):
    """What one replica did with its part of a write."""

    def __init__(
        self, node_id: str, response: Resp | None = None, error: FeedringError | None = None, newer: int = 0
    ) -> None:
        self.node_id = node_id
        self.response = response
        self.error = error
        self.newer = newer  # a versioned write: the newer version this replica already held (0: none)


class Replicator:
    def __init__(
        self,
        node_id: str,
        peers: StorageClient,
        hints: HintLog,
        local: LocalWrites,
        clock: VersionClock,
        write_quorum: int,
        timeout_s: float,
        background_timeout_s: float | None = None,
        clock_skew: ClockSkew | None = None,
    ) -> None:
        self.node_id = node_id
        self.peers = peers
        self.hints = hints
        self.local = local  # this node's own part of a write
        self.clock = clock
        self.write_quorum = write_quorum
        self.timeout_s = timeout_s
        # A fan-out batch queues behind other background work on its replica (node/reads_first.py):
        # waiting only `timeout_s` for it would hint (and redo) work a live replica is doing.
        self.background_timeout_s = max(background_timeout_s or timeout_s, timeout_s)
        self.outboxes = Outboxes(peers, self.background_timeout_s)  # background writes, per peer
        self.quorum_failures = 0
        self.clock_skew = clock_skew or ClockSkew(0)  # peers' wall clocks, from their write replies
        self.restamped = 0  # versioned writes stamped again above a replica's newer version
        self._background: set[asyncio.Task[_Outcome[Message]]] = set()
        # Forwards answered after their caller, with the provisional hint kept for each (hints.py).
        self._provisional: dict[asyncio.Task[Any], bytes] = {}

    @property
    def forwards_in_flight(self) -> int:
        """Forwards still on their way after their write was answered (each lands or leaves a hint)."""
        return len(self._background)

    def quorum(self, replicas: int) -> int:
        """Acks a partition with `replicas` current replicas needs (a majority unless configured)."""
        return min(self.write_quorum or replicas // 2 + 1, replicas)

    async def write(self, method: ReplicatedWrite[Req, Resp], request: Req) -> Resp:
        """Applies the write on a quorum of the replicas of every partition it touches; answers with
        this node's reply when it holds keys of the write, else the first replica's.

        A versioned write gets its version here, from this node's clock. A replica of the quorum
        that already holds a newer version of one of its keys says so: that newer write was stamped
        by a clock ahead of ours (or is concurrent), and letting ours lose would undo what the caller
        was just told is done (an unfollow after a follow). So it is stamped again above that version
        and written again, at most RESTAMPS times. Quorums intersect, so every acknowledged write is
        on some replica of ours: the last stamping is above all of them."""
        restamp = False  # a version given by the caller (or a bulk load's) is kept as it is
        if method.versioned and not getattr(request, "version", 0):
            request.version = self.clock.next()  # one version for every replica
            restamp = not method.bulk
        for _ in range(RESTAMPS):
            reply, newer = await self._write_once(method, request)
            if not restamp or newer <= request.version:
                return reply
            self.clock.observe(newer)
            log.info(
                "write restamped method=%s version=%d below a replica's %d (%.0f ms ahead: a skewed clock, or a "
                "concurrent write)",
                method.name,
                request.version,
                newer,
                ((newer >> 16) - (request.version >> 16)),
            )
            request.version = self.clock.next()
            self.restamped += 1
        return (await self._write_once(method, request))[0]

    async def _write_once(self, method: ReplicatedWrite[Req, Resp], request: Req) -> tuple[Resp, int]:
        """One round of the write; returns the reply and the newest version a replica that answered
        already held for one of its keys (0: none)."""
        cluster_map = self.peers.map
        # Which nodes get which keys, and which partitions' quorums they count towards.
        keys_by_node: dict[str, list[str]] = defaultdict(list)
        counted: dict[str, set[int]] = defaultdict(set)
        need: dict[int, int] = {}
        request_keys = method.keys(request)
        # By partition first: a fan-out page's keys share partitions, whose replicas are looked up once.
        by_partition: dict[int, list[str]] = defaultdict(list)
        for key in request_keys:
            by_partition[cluster_map.partition(key)].append(key)
        for part, part_keys in by_partition.items():
            replicas = cluster_map.replicas(part)
            pending = cluster_map.pending_table[part] if cluster_map.pending_table else ()
            need[part] = self.quorum(len(replicas))
            for node_id in dict.fromkeys((*replicas, *pending)):
                keys_by_node[node_id] += part_keys
                if node_id in replicas:
                    counted[node_id].add(part)

        if not need:
            empty: Resp = method.response()
            return empty, 0
        acks: dict[int, int] = dict.fromkeys(need, 0)
        outcomes: list[_Outcome[Resp]] = []
        all_keys = len(request_keys)
        background = isinstance(method, FanoutWrite)
        whole: list[storage_pb2.ReplicaWrite] = []  # the whole request, encoded once for every replica

        def part_of(node_keys: list[str], of: Req = request) -> Req:
            return of if len(node_keys) >= all_keys else method.limited(of, node_keys)

        def on_wire(node_keys: list[str]) -> storage_pb2.ReplicaWrite:
            if len(node_keys) < all_keys:
                part = part_of(node_keys, to_replicas)
                return storage_pb2.ReplicaWrite(method=method.name, request=part.SerializeToString())
            if not whole:
                whole.append(storage_pb2.ReplicaWrite(method=method.name, request=to_replicas.SerializeToString()))
            return whole[0]

        async def apply_here(node_keys: list[str]) -> None:
            """This node's part; its outcome goes first (it answers the caller when we hold keys).
            A disk that refuses the write makes this node a replica that missed it (the others
            make the quorum; no hint can be kept on that disk: repair brings it back)."""
            try:
                reply, newer = await self.local.apply_noting_newer(method, part_of(node_keys))
            except DiskWriteError as exc:
                outcomes.append(_Outcome(self.node_id, error=exc))
                log.warning("own copy not written method=%s error=%s", method.name, exc.message)
                return
            outcomes.insert(0, _Outcome(self.node_id, reply, newer=newer))
            for part in counted[self.node_id]:
                acks[part] += 1

        to_replicas = request  # what the other replicas get (a write may adapt it to our reply)
        local_keys = keys_by_node.pop(self.node_id, None)
        if local_keys is not None and not background:
            # Our own part first: it raises what the caller must see (bad input, not the owner).
            await apply_here(local_keys)
        if method.forwarded is not None:
            mine = outcomes[0].response if outcomes and outcomes[0].node_id == self.node_id else None
            to_replicas = method.forwarded(self.local.data, request, mine)

        # A replica believed down gets a hint without being tried, as long as each of its
        # partitions has enough other replicas believed up for the quorum; otherwise it is tried.
        down = {n for n in keys_by_node if not self._reachable(n)}
        # Each replica once (this node is in `counted` already when it holds keys of the write);
        # counted only when a replica is believed down (per partition: a fan-out page has hundreds).
        up_count = self._up_count(need, counted, down) if down else {}
        tasks: dict[asyncio.Task[_Outcome[Resp]], str] = {}
        sent: dict[str, storage_pb2.ReplicaWrite] = {}  # what each forward carries (a hint keeps the same)
        for node_id, node_keys in keys_by_node.items():
            write = sent[node_id] = on_wire(node_keys)
            if node_id in down and all(up_count[p] >= need[p] for p in counted[node_id]):
                self._hint(node_id, write, "believed down")
                continue
            tasks[asyncio.create_task(self._forward(node_id, method, write, background))] = node_id

        if local_keys is not None and background:
            # A fan-out batch (from this node's own delivery driver) is applied here while the
            # replicas apply theirs: one batch's time, not two, before the quorum is known.
            try:
                await apply_here(local_keys)
            except BaseException:
                self._let_finish(tasks)  # the forwards finish or leave hints on their own
                raise

        waiting = set(tasks)
        while waiting and any(acks[p] < need[p] for p in need):
            done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                outcome = task.result()
                outcomes.append(outcome)
                if outcome.error is None:
                    for part in counted[outcome.node_id]:
                        acks[part] += 1
        if background and waiting:
            # A fan-out page is checkpointed as done once this returns (node/delivery.py). Were this
            # node killed with a forward still in flight, that replica would lack the page until a
            # repair while the record says it is delivered. So each forward still in flight gets a
            # durable hint now, provisional: not replayed while the forward may land, removed when it
            # does, kept when it fails (_forward). Waiting for the slowest replica instead cut the
            # soak's delivery rate below its post rate (2026-12-05).
            waiting = await self._hint_in_flight(waiting, tasks, sent)
        self._let_finish(waiting)  # answered already: the rest finish (or leave hints) on their own

        short = sorted(p for p in need if acks[p] < need[p])
        if short:
            self.quorum_failures += 1
            raise self._quorum_error(method, short, acks, need, outcomes)
        replies = [o.response for o in outcomes if o.response is not None]
        reply = replies[0]
        if method.answer is not None:
            reply = method.answer(reply, replies[1:])
        return reply, max((o.newer for o in outcomes), default=0)

    async def _hint_in_flight(
        self,
        waiting: set[asyncio.Task[_Outcome[Resp]]],
        tasks: dict[asyncio.Task[_Outcome[Resp]], str],
        sent: dict[str, storage_pb2.ReplicaWrite],
    ) -> set[asyncio.Task[_Outcome[Resp]]]:
        """Keeps a provisional hint for each forward in `waiting`; returns those still in flight
        once every other has one. A forward whose hint cannot be kept (the disk refuses, or the
        target's hints are at their limit) is waited for."""
        unhinted = set()
        for task in waiting:
            node_id = tasks[task]
            try:
                key = self.hints.add(node_id, sent[node_id], provisional=True)
            except DiskWriteError:
                key = None
            if key is None:
                unhinted.add(task)
            else:
                self._provisional[task] = key
        if unhinted:
            await asyncio.wait(unhinted)
        return waiting - unhinted

    def _up_count(self, need: dict[int, int], counted: dict[str, set[int]], down: set[str]) -> dict[int, int]:
        """Per partition of the write, its replicas believed up."""
        up = [counted[n] for n in {*counted, self.node_id} if n not in down]
        return {p: sum(1 for parts in up if p in parts) for p in need}

    def _let_finish(self, tasks: Iterable[asyncio.Task[_Outcome[Resp]]]) -> None:
        for task in tasks:
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _reachable(self, node_id: str) -> bool:
        try:
            return self.peers.health.allows(self.peers.map.address(node_id))
        except KeyError:
            return False

    async def _forward(
        self, node_id: str, method: ReplicatedWrite[Req, Resp], write: storage_pb2.ReplicaWrite, background: bool
    ) -> _Outcome[Resp]:
        try:
            if background or method.coalesced:
                result = await self.outboxes.send(node_id, write)
            else:
                sent_ms = time.time() * 1000
                reply = await self.peers.apply_writes.on_node(
                    node_id,
                    storage_pb2.ApplyWritesRequest(writes=[write]),
                    timeout_s=self.background_timeout_s if method.bulk else self.timeout_s,
                )
                self.clock_skew.note(node_id, sent_ms, reply.wall_ms, time.time() * 1000)
                result = reply.results[0]
            if result.code == 0:
                self._settle(node_id, applied=True)
                return _Outcome(node_id, method.response.FromString(result.response), newer=result.superseded_by)
            error = error_for_code(result.code, result.message, result.epoch)
        except FeedringError as exc:
            error = exc
        if not self._settle(node_id, applied=False):
            self._hint(node_id, write, error.message)
        return _Outcome(node_id, error=error)

    def _settle(self, node_id: str, applied: bool) -> bool:
        """Settles the provisional hint kept for this forward, if one was; True if there was."""
        key = self._provisional.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
        if key is not None:
            self.hints.settle(node_id, key, applied)
        return key is not None

    def _hint(self, node_id: str, write: storage_pb2.ReplicaWrite, why: str) -> None:
        self.hints.add(node_id, write)
        log.debug("hint kept target=%s method=%s why=%s", node_id, write.method, why)

    def _quorum_error(
        self,
        method: ReplicatedWrite[Req, Resp],
        short: list[int],
        acks: dict[int, int],
        need: dict[int, int],
        outcomes: list[_Outcome[Resp]],
    ) -> FeedringError:
        wrong_owner = [o.error for o in outcomes if isinstance(o.error, WrongEpoch)]
        if wrong_owner:
            newest = max(wrong_owner, key=lambda e: e.epoch)
            return WrongEpoch(newest.message, newest.epoch)
        part = short[0]
        errors = "; ".join(o.error.message for o in outcomes if o.error is not None) or "replicas believed down"
        return Unavailable(
            f"{method.name} reached {acks[part]} of the {need[part]} replicas of partition {part} it needs "
            f"(write_quorum); it may have been applied in part and will be completed by hints and repair: {errors}"
        )

    async def drain(self) -> None:
        """Waits for forwards still running (a clean stop)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
