"""Adding and removing storage nodes on a live cluster: plan, copy, seal, commit, clean up.

The shape is the one Cassandra (pending ranges, one bootstrap at a time), Riak (`cluster plan` /
`commit`) and Redis Cluster (slot migration, MOVED) converge on:
1. Plan: the new partition table comes from the consistent-hash ring over the new membership;
   only partitions whose replicas change move. One change at a time.
2. Begin (epoch N+1): every node gets the map with the new table pending. Routing is unchanged.
3. Copy: each new replica pulls its partitions from the current primary, node to node — a
   snapshot, then every write accepted since (node/transfer.py, node/change_feed.py).
4. Seal: once every transfer has caught up, the sources refuse writes to the moving partitions
   (routers retry) and end the streams after the last accepted write.
5. Commit (epoch N+2): every node gets the map with the new table; routers follow.
6. Clean up: only then do old replicas delete their copies.
Everything before the commit can be redone from scratch (resume) or dropped (abort), and nothing
is lost either way: until the commit, the old replicas are the only ones serving.

The plan is pure (router/membership_plan.py); this module runs it. The change runs as a task of
this router: a caller that disconnects does not stop it, and a caller that asks again attaches to it.
If this router dies, `feedring node resume` through any router picks the change up from the pending
map stored on the nodes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from common.cluster_map import ClusterMap, Member
from common.errors import FailedPrecondition, FeedringError, InvalidArgument, Unavailable
from common.storage_client import StorageClient
from protos import admin_pb2, storage_pb2
from router.membership_plan import Kind, Transfers, describe, plan_change, repairs_after_dead

__all__ = ["MembershipChanges"]

log = logging.getLogger(__name__)


class MembershipChanges:
    def __init__(self, storage: StorageClient) -> None:
        self.storage = storage
        self._task: asyncio.Task[None] | None = None
        self._progress = admin_pb2.ChangeProgress()
        self._subscribers: list[asyncio.Queue[admin_pb2.ChangeProgress]] = []
        self._dead: tuple[str, ...] = ()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def progress(self) -> admin_pb2.ChangeProgress | None:
        return self._progress if self.running else None

    # -- entry point -----------------------------------------------------------------------------

    async def request(self, req: admin_pb2.ChangeMembershipRequest) -> AsyncIterator[admin_pb2.ChangeProgress]:
        current = await self.storage.refresh_map()
        if req.kind in (Kind.ADD, Kind.REMOVE):
            if self.running:
                raise FailedPrecondition(
                    f"another membership change is in progress ({self._progress.change!r}): one change at a "
                    "time. Run `feedring node resume` to finish it or `feedring node abort` to roll it back"
                )
            if req.dead and req.kind != Kind.REMOVE:
                raise InvalidArgument("--dead goes with remove only")
            if req.force and req.kind != Kind.REMOVE:
                raise InvalidArgument("--force goes with remove only")
            plan = plan_change(
                current,
                req.kind,
                req.node_id,
                req.address,
                dead=req.dead,
                feed_address=req.feed_address,
                force=req.force,
            )
            if req.kind == Kind.ADD:
                await self._check_reachable(req.node_id, req.address)
            if req.dry_run:
                yield describe(plan, "PLANNED", "dry run: nothing was moved")
                return
            self._start(plan, req.max_keys_per_second)
        elif req.kind == Kind.RESUME:
            if not self.running:
                if not current.changing:
                    raise FailedPrecondition(f"no membership change is in progress (epoch {current.epoch})")
                self._start(current, req.max_keys_per_second)
        elif req.kind == Kind.ABORT:
            yield await self._abort(current)
            return
        else:
            raise InvalidArgument("kind must be ADD, REMOVE, RESUME or ABORT")
        async for progress in self._follow():
            yield progress

    async def _check_reachable(self, node_id: str, address: str) -> None:
        if not await self.storage.serving(address):
            raise Unavailable(
                f"node {node_id} at {address} is not reachable or not serving; start it first "
                f"(make node ID={node_id} ADDR={address})"
            )

    # -- progress --------------------------------------------------------------------------------

    def _start(self, plan: ClusterMap, max_keys_per_second: int) -> None:
        self._progress = describe(plan, "PLANNED")
        self._task = asyncio.create_task(self._execute(plan, max_keys_per_second))

    def _publish(self, **fields: object) -> None:
        for name, value in fields.items():
            setattr(self._progress, name, value)
        snapshot = admin_pb2.ChangeProgress()
        snapshot.CopyFrom(self._progress)
        for queue in self._subscribers:
            queue.put_nowait(snapshot)

    async def _follow(self) -> AsyncIterator[admin_pb2.ChangeProgress]:
        queue: asyncio.Queue[admin_pb2.ChangeProgress] = asyncio.Queue()
        self._subscribers.append(queue)
        try:
            yield self._progress
            last_phase = self._progress.phase
            while True:
                progress = await queue.get()
                while not queue.empty():  # only the newest matters to a watcher
                    progress = queue.get_nowait()
                yield progress
                if progress.phase in ("DONE", "FAILED", "ABORTED"):
                    return
                if progress.phase == last_phase:
                    await asyncio.sleep(0.2)  # at most five updates a second within a phase
                last_phase = progress.phase
        finally:
            self._subscribers.remove(queue)

    # -- running ---------------------------------------------------------------------------------

    async def _execute(self, plan: ClusterMap, max_keys_per_second: int) -> None:
        try:
            await self._run(plan, max_keys_per_second)
        except FeedringError as exc:
            log.error("membership change failed change=%r error=%s", plan.change, exc.message)
            self._publish(
                phase="FAILED",
                message=f"{exc.message}. Nothing is lost: fix the cause, then `feedring node resume` "
                "to retry or `feedring node abort` to roll back",
            )
        except Exception as exc:
            log.exception("membership change crashed change=%r", plan.change)
            self._publish(phase="FAILED", message=f"internal error: {exc}; see the router log")

    async def _run(self, plan: ClusterMap, max_keys_per_second: int) -> None:
        transfers = Transfers.of(plan)
        self._dead = plan.dead  # the committed map no longer names them: keep not calling them
        log.info("membership change begins change=%r epoch=%d moves=%d", plan.change, plan.epoch, len(plan.moves()))
        await self._push(plan)
        # A resumed change may find partitions sealed by the attempt that died.
        await self._seal_all(plan, transfers, unseal=True)
        started = time.monotonic()
        self._publish(phase="COPYING", from_epoch=plan.epoch - 1, to_epoch=plan.epoch + 1)
        streams = await self._copy_until_caught_up(plan, transfers, max_keys_per_second, started)

        self._publish(phase="SEALING")
        await self._seal_all(plan, transfers)
        await asyncio.gather(*streams)
        if plan.replication_factor > 1:
            self._publish(phase="SYNCING")
            await self._catch_up(plan, transfers)

        committed = plan.commit_change()
        # The removed nodes too: they learn they hold nothing any more (their Feed API forwards
        # every read from now on, and they may drop their copies).
        await self._push(committed, also=plan.leaving)
        self._publish(phase="COMMITTED", to_epoch=committed.epoch)
        log.info("membership change committed change=%r epoch=%d", plan.change, committed.epoch)

        losing = {n: parts for n, parts in _losing(plan).items() if n not in plan.dead}
        leftovers = await self._drop(plan, losing, timeout_s=600.0)
        elapsed = time.monotonic() - started
        keys_moved = self._progress.keys_moved
        self._publish(
            phase="DONE",
            message=(
                f"moved {transfers.partitions} partitions, {keys_moved} keys in {elapsed:.1f}s"
                + (f"; old copies not yet deleted: {leftovers}" if leftovers else "")
            ),
        )
        log.info("membership change done change=%r keys=%d seconds=%.1f", plan.change, keys_moved, elapsed)

    async def _copy_until_caught_up(
        self, plan: ClusterMap, transfers: Transfers, max_keys_per_second: int, started: float
    ) -> list[asyncio.Task[None]]:
        """Starts every stream and returns them once each has sent its snapshot (they end only
        after the seal), or raises the first failure."""
        caught_up: set[tuple[str, str]] = set()
        all_caught_up = asyncio.Event()
        totals: dict[tuple[str, str], storage_pb2.PullProgress] = {}
        if not transfers.streams:
            all_caught_up.set()

        async def pull(pair: tuple[str, str], parts: list[int]) -> None:
            source, destination = pair
            request = storage_pb2.PullPartitionsRequest(
                epoch=plan.epoch,
                source_id=source,
                source_address=plan.address(source),
                partitions=parts,
                max_keys_per_second=max_keys_per_second,
            )
            async for progress in self.storage.pull_partitions.at(
                plan.address(destination), request, node_id=destination
            ):
                totals[pair] = progress
                if progress.snapshot_done and pair not in caught_up:
                    caught_up.add(pair)
                    log.info("transfer caught up source=%s destination=%s", source, destination)
                    if len(caught_up) == len(transfers.streams):
                        all_caught_up.set()
                self._publish(
                    keys_total=sum(t.total_keys for t in totals.values()),
                    keys_moved=sum(t.keys for t in totals.values()),
                    bytes_moved=sum(t.bytes for t in totals.values()),
                    transfers_caught_up=len(caught_up),
                    elapsed_s=time.monotonic() - started,
                )

        streams = [asyncio.create_task(pull(pair, parts)) for pair, parts in transfers.streams.items()]
        waiter = asyncio.create_task(all_caught_up.wait())
        try:
            while not waiter.done():
                await asyncio.wait([waiter, *streams], return_when=asyncio.FIRST_COMPLETED)
                for stream in streams:
                    if stream.done() and (failure := stream.exception()) is not None:
                        raise failure
                    if stream.done() and not waiter.done():
                        raise Unavailable("a transfer ended before it was sealed")
        except BaseException:
            waiter.cancel()
            for stream in streams:
                stream.cancel()
            raise
        return streams

    async def _catch_up(self, plan: ClusterMap, transfers: Transfers) -> None:
        """With replicas, the source of a transfer may have missed writes its partition's other
        replicas acknowledged (it was down, or sealed); and a resumed transfer starts its copy
        afresh, dropping writes sent straight to the destination meanwhile. So before the new
        replicas serve, each pulls what differs from every current replica of its partitions.
        When a dead node leaves, every partition is also repaired once among the replicas that keep
        it (repairs_after_dead): hints the dead node held for any of them are gone."""

        async def one(node_id: str, parts: list[int], catch_up: bool) -> None:
            request = storage_pb2.RepairRequest(partitions=parts, catch_up=catch_up)
            async for progress in self.storage.repair.at(plan.address(node_id), request, node_id=node_id):
                if progress.done and progress.keys_repaired:
                    log.info(
                        "replica caught up with the others node=%s partitions=%d entries=%d unreachable=%s",
                        node_id,
                        len(parts),
                        progress.keys_repaired,
                        ",".join(progress.unreachable) or "-",
                    )

        await asyncio.gather(
            *(one(d, parts, catch_up=True) for d, parts in transfers.by_destination.items()),
            *(one(n, parts, catch_up=False) for n, parts in repairs_after_dead(plan).items()),
        )

    async def _seal_all(self, plan: ClusterMap, transfers: Transfers, unseal: bool = False) -> None:
        await asyncio.gather(
            *(
                self.storage.seal_partitions.at(
                    plan.address(source),
                    storage_pb2.SealPartitionsRequest(partitions=parts, unseal=unseal),
                    node_id=source,
                    wait_for_ready=True,
                )
                for source, parts in transfers.by_source.items()
            )
        )

    async def _drop(self, plan: ClusterMap, partitions_by_node: dict[str, list[int]], timeout_s: float) -> list[str]:
        """Deletes copies the nodes no longer serve; returns what could not be deleted. Addresses come
        from the plan: a node being removed is no member of the committed map."""
        dropped = await asyncio.gather(
            *(
                self.storage.drop_partitions.at(
                    plan.address(node_id),
                    storage_pb2.DropPartitionsRequest(partitions=parts),
                    node_id=node_id,
                    timeout_s=timeout_s,
                )
                for node_id, parts in partitions_by_node.items()
            ),
            return_exceptions=True,
        )
        return [str(d) for d in dropped if isinstance(d, BaseException)]

    async def _push(self, cluster_map: ClusterMap, also: tuple[Member, ...] = ()) -> None:
        """Gives the map to every node that is (or is becoming, or leaving as) a member, and `also`
        to the nodes a change just let go."""
        message = cluster_map.to_proto()
        dead = {*cluster_map.dead, *self._dead}
        nodes = {m.id: m.address for m in (*cluster_map.members, *cluster_map.leaving, *also) if m.id not in dead}
        results = await asyncio.gather(
            *(
                # wait_for_ready: a node restarted moments ago may still be in the channel's reconnect backoff.
                self.storage.set_cluster_map.at(address, message, node_id=node_id, timeout_s=5.0, wait_for_ready=True)
                for node_id, address in nodes.items()
            ),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise Unavailable(f"could not give epoch {cluster_map.epoch} to every node: {errors[0]}")
        self.storage.adopt(cluster_map)

    async def _abort(self, current: ClusterMap) -> admin_pb2.ChangeProgress:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._publish(phase="ABORTED", message="aborted by `feedring node abort`")
        if not current.changing:
            raise FailedPrecondition(f"no membership change is in progress (epoch {current.epoch})")
        transfers = Transfers.of(current)
        self._dead = current.dead
        await self._seal_all(current, transfers, unseal=True)
        rolled_back = current.abort_change()
        kept = {m.id for m in rolled_back.members}
        await self._push(rolled_back, also=tuple(m for m in current.members if m.id not in kept))
        # Partial copies on the destinations are not served; delete them.
        await self._drop(current, transfers.by_destination, timeout_s=60.0)
        log.info("membership change aborted change=%r epoch=%d", current.change, rolled_back.epoch)
        progress = describe(current, "ABORTED", f"rolled back {current.change!r}; epoch is now {rolled_back.epoch}")
        progress.to_epoch = rolled_back.epoch
        return progress


def _losing(plan: ClusterMap) -> dict[str, list[int]]:
    """Per node, the partitions it held before the change and does not after (with replicas, not
    only the sources of the transfers lose partitions)."""
    out: dict[str, list[int]] = {}
    for part, (old, new) in enumerate(zip(plan.table, plan.pending_table, strict=True)):
        for node_id in old:
            if node_id not in new:
                out.setdefault(node_id, []).append(part)
    return out
