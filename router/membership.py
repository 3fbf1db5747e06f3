"""Adding and removing storage nodes on a live cluster: plan, copy, seal, commit, clean up.

The shape is the one Cassandra, Riak and Redis Cluster converge on (../shared/DESIGN-NOTES.md):
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

The change runs as a task of this router: a caller that disconnects does not stop it, and a
caller that asks again attaches to it. If this router dies, `feedring node resume` through any
router picks the change up from the pending map stored on the nodes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.cluster_map import ClusterMap, Member
from common.errors import FailedPrecondition, FeedringError, InvalidArgument, NotFound, Unavailable
from protos import admin_pb2, storage_pb2
from router.node_pool import NodePool

__all__ = ["MembershipChanges"]

log = logging.getLogger(__name__)

Kind = admin_pb2.ChangeMembershipRequest


class MembershipChanges:
    def __init__(self, pool: NodePool) -> None:
        self.pool = pool
        self._task: asyncio.Task[None] | None = None
        self._progress = admin_pb2.ChangeProgress()
        self._subscribers: list[asyncio.Queue[admin_pb2.ChangeProgress]] = []

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def progress(self) -> admin_pb2.ChangeProgress | None:
        return self._progress if self.running else None

    # -- entry point -----------------------------------------------------------------------------

    async def request(self, req: admin_pb2.ChangeMembershipRequest) -> AsyncIterator[admin_pb2.ChangeProgress]:
        current = await self.pool.refresh_map()
        if req.kind in (Kind.ADD, Kind.REMOVE):
            if self.running or current.changing:
                raise FailedPrecondition(
                    f"another membership change is in progress ({current.change or self._progress.change!r}, "
                    f"epoch {current.epoch}): one change at a time. Run `feedring node resume` to finish it "
                    "or `feedring node abort` to roll it back"
                )
            plan = await self._plan(current, req)
            if req.dry_run:
                yield self._describe(plan, "PLANNED", "dry run: nothing was moved")
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

    # -- planning --------------------------------------------------------------------------------

    async def _plan(self, current: ClusterMap, req: admin_pb2.ChangeMembershipRequest) -> ClusterMap:
        if req.kind == Kind.ADD:
            if not req.node_id or not req.address:
                raise InvalidArgument("adding a node needs its id and address")
            if current.member(req.node_id):
                raise FailedPrecondition(f"node {req.node_id} is already a member at epoch {current.epoch}")
            if any(m.address == req.address for m in current.members):
                raise FailedPrecondition(f"address {req.address} is already used by another node")
            await self._check_reachable(req.node_id, req.address)
            members = (*current.members, Member(req.node_id, req.address))
            description = f"add {req.node_id} {req.address}"
        else:
            node = current.member(req.node_id)
            if node is None:
                known = ", ".join(m.id for m in current.members)
                raise NotFound(f"node {req.node_id!r} is not a member (members: {known})")
            members = tuple(m for m in current.members if m.id != req.node_id)
            if not members:
                raise FailedPrecondition(f"cannot remove {req.node_id}: it is the last node and holds all the data")
            if len(members) < current.replication_factor:
                raise FailedPrecondition(
                    f"cannot remove {req.node_id}: {len(members)} nodes cannot hold "
                    f"{current.replication_factor} replicas of each partition"
                )
            description = f"remove {req.node_id}"
        return current.begin_change(members, description)

    @staticmethod
    async def _check_reachable(node_id: str, address: str) -> None:
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2.0)
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(
                f"node {node_id} at {address} is not reachable ({exc.code().name}); start it first "
                f"(make node ID={node_id} ADDR={address})"
            ) from None
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            raise Unavailable(f"node {node_id} at {address} is not serving yet")

    def _describe(self, plan: ClusterMap, phase: str, message: str = "") -> admin_pb2.ChangeProgress:
        moves = plan.moves()
        pairs: dict[tuple[str, str], int] = defaultdict(int)
        for _, source, destination in moves:
            pairs[(source, destination)] += 1
        return admin_pb2.ChangeProgress(
            phase=phase,
            change=plan.change,
            from_epoch=plan.epoch - 1,
            to_epoch=plan.epoch + 1,
            partitions_total=plan.partitions,
            partitions_moving=len({p for p, _, _ in moves}),
            moves=[admin_pb2.PlannedMove(source=s, destination=d, partitions=n) for (s, d), n in sorted(pairs.items())],
            transfers_total=len(pairs),
            message=message,
        )

    # -- running ---------------------------------------------------------------------------------

    def _start(self, plan: ClusterMap, max_keys_per_second: int) -> None:
        self._progress = self._describe(plan, "PLANNED")
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
        log.info("membership change begins change=%r epoch=%d moves=%d", plan.change, plan.epoch, len(plan.moves()))
        await self._push(plan)
        moves = plan.moves()
        by_source: dict[str, list[int]] = defaultdict(list)
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for part, source, destination in moves:
            groups[(source, destination)].append(part)
            by_source[source].append(part)
        # A resumed change may find partitions sealed by the attempt that died.
        await asyncio.gather(*(self._seal(plan, s, parts, unseal=True) for s, parts in by_source.items()))

        started = time.monotonic()
        caught_up: set[tuple[str, str]] = set()
        all_caught_up = asyncio.Event()
        totals: dict[tuple[str, str], storage_pb2.PullProgress] = {}
        if not groups:
            all_caught_up.set()
        self._publish(phase="COPYING", from_epoch=plan.epoch - 1, to_epoch=plan.epoch + 1)

        async def pull(pair: tuple[str, str], parts: list[int]) -> None:
            source, destination = pair
            request = storage_pb2.PullPartitionsRequest(
                source_id=source,
                source_address=plan.address(source),
                partitions=parts,
                max_keys_per_second=max_keys_per_second,
            )
            request.epoch = plan.epoch
            stub = self.pool.stub(destination)
            try:
                async for progress in stub.PullPartitions(request):
                    totals[pair] = progress
                    if progress.snapshot_done and pair not in caught_up:
                        caught_up.add(pair)
                        log.info("transfer caught up source=%s destination=%s", source, destination)
                        if len(caught_up) == len(groups):
                            all_caught_up.set()
                    self._publish(
                        keys_total=sum(t.total_keys for t in totals.values()),
                        keys_moved=sum(t.keys for t in totals.values()),
                        bytes_moved=sum(t.bytes for t in totals.values()),
                        transfers_caught_up=len(caught_up),
                        elapsed_s=time.monotonic() - started,
                    )
            except grpc.aio.AioRpcError as exc:
                raise Unavailable(
                    f"transfer {source} -> {destination} failed: {exc.code().name}: {exc.details()}"
                ) from None

        transfers = [asyncio.create_task(pull(pair, parts)) for pair, parts in groups.items()]
        waiter = asyncio.create_task(all_caught_up.wait())
        try:
            # Transfers only finish after the seal, so wait for "all caught up" or a failure.
            while not waiter.done():
                await asyncio.wait([waiter, *transfers], return_when=asyncio.FIRST_COMPLETED)
                for t in transfers:
                    if t.done() and t.exception():
                        raise t.exception()  # type: ignore[misc]
                    if t.done() and not waiter.done():
                        raise Unavailable("a transfer ended before it was sealed")
        except BaseException:
            waiter.cancel()
            for t in transfers:
                t.cancel()
            raise

        self._publish(phase="SEALING")
        await asyncio.gather(*(self._seal(plan, s, parts) for s, parts in by_source.items()))
        await asyncio.gather(*transfers)

        committed = plan.commit_change()
        await self._push(committed)
        self._publish(phase="COMMITTED", to_epoch=committed.epoch)
        log.info("membership change committed change=%r epoch=%d", plan.change, committed.epoch)

        # Addresses from the plan: a node being removed is no member of the committed map.
        dropped = await asyncio.gather(
            *(
                self.pool.stub_for_address(plan.address(s)).DropPartitions(
                    storage_pb2.DropPartitionsRequest(partitions=parts), timeout=600.0
                )
                for s, parts in by_source.items()
            ),
            return_exceptions=True,
        )
        leftovers = [str(d) for d in dropped if isinstance(d, BaseException)]
        elapsed = time.monotonic() - started
        keys_moved = self._progress.keys_moved
        self._publish(
            phase="DONE",
            message=(
                f"moved {len({p for p, _, _ in moves})} partitions, {keys_moved} keys in {elapsed:.1f}s"
                + (f"; old copies not yet deleted: {leftovers}" if leftovers else "")
            ),
        )
        log.info("membership change done change=%r keys=%d seconds=%.1f", plan.change, keys_moved, elapsed)

    async def _seal(self, plan: ClusterMap, source: str, parts: list[int], unseal: bool = False) -> None:
        await self.pool.call_node(
            source,
            "SealPartitions",
            storage_pb2.SealPartitionsRequest(partitions=parts, unseal=unseal),
            wait_for_ready=True,
        )

    async def _push(self, cluster_map: ClusterMap) -> None:
        """Gives the map to every node that is (or is becoming, or leaving as) a member."""
        message = cluster_map.to_proto()
        nodes = {m.id: m.address for m in (*cluster_map.members, *cluster_map.leaving)}
        results = await asyncio.gather(
            *(self._set_map(node_id, address, message) for node_id, address in nodes.items()),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise Unavailable(f"could not give epoch {cluster_map.epoch} to every node: {errors[0]}")
        self.pool.adopt(cluster_map)

    async def _set_map(self, node_id: str, address: str, message: object) -> None:
        stub = self.pool.stub_for_address(address)
        try:
            # wait_for_ready: a node restarted moments ago may still be in the channel's reconnect backoff.
            await stub.SetClusterMap(message, timeout=5.0, wait_for_ready=True)
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(f"node {node_id} ({address}): {exc.code().name}: {exc.details()}") from None

    async def _abort(self, current: ClusterMap) -> admin_pb2.ChangeProgress:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._publish(phase="ABORTED", message="aborted by `feedring node abort`")
        if not current.changing:
            raise FailedPrecondition(f"no membership change is in progress (epoch {current.epoch})")
        moves = current.moves()
        by_source: dict[str, list[int]] = defaultdict(list)
        by_destination: dict[str, list[int]] = defaultdict(list)
        for part, source, destination in moves:
            by_source[source].append(part)
            by_destination[destination].append(part)
        await asyncio.gather(*(self._seal(current, s, parts, unseal=True) for s, parts in by_source.items()))
        rolled_back = current.abort_change()
        await self._push(rolled_back)
        # Partial copies on the destinations are not served; delete them.
        await asyncio.gather(
            *(
                self.pool.stub_for_address(current.address(d)).DropPartitions(
                    storage_pb2.DropPartitionsRequest(partitions=parts), timeout=60.0
                )
                for d, parts in by_destination.items()
            ),
            return_exceptions=True,
        )
        log.info("membership change aborted change=%r epoch=%d", current.change, rolled_back.epoch)
        progress = self._describe(
            current, "ABORTED", f"rolled back {current.change!r}; epoch is now {rolled_back.epoch}"
        )
        progress.to_epoch = rolled_back.epoch
        return progress
