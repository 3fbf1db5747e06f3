"""What a map-aware client knows and decides, with no I/O: shared by the blocking and asyncio clients.

MapState holds the routing map (and when it was fetched), the replicas that failed lately (a circuit
breaker, common/peer_health.py), the client's read spread, which replica took this client's recent
writes, and which authors' posts are salted (a hot author's Post goes to the salted key its
request_id picks, whose primary stores it without forwarding it on: common/grpc_status.py
SALT_BUCKETS_KEY). Attempts walks one call through its targets: a replica of the key (then the next),
then the entry address the client was given, each within the attempt deadline and all within the
call's. client/map_aware.py and client/async_client.py only send what these say.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar

import grpc

from client.routing import READS, SPREAD_READS, RoutingTable, Spread
from common import salting
from common.grpc_status import MAP_EPOCH_KEY, SALT_BUCKETS_KEY, status_of
from common.peer_health import PeerHealth
from protos import feed_pb2

__all__ = ["MapState", "Attempts", "MAP_MAX_AGE_S", "READ_YOUR_WRITES_S"]

MAP_MAX_AGE_S = 5.0
READ_YOUR_WRITES_S = 10.0  # how long reads of a written key go to the replica that took the write
# How long a Post's word that its author is salted is used: an author who cooled down meanwhile
# costs only the forward this saves (the node that takes the post decides its key).
SALTED_FOR_S = 60.0
_MAX_REMEMBERED = 10_000  # keys each of the client's short memories holds
# Also CANCELLED: what a node answers for a call still running when it shuts down (a rolling
# restart). Every call is safe to repeat elsewhere (see client/map_aware.py).
_FAIL_OVER = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}

Metadata = tuple[tuple[str, str], ...]


V = TypeVar("V")


class _Recent(Generic[V]):
    """What the client learned of a key lately: each value is used for `max_age_s`, and at most
    _MAX_REMEMBERED keys are held (the stale ones dropped first, then all)."""

    def __init__(self, max_age_s: float) -> None:
        self.max_age_s = max_age_s
        self._held: dict[str, tuple[V, float]] = {}  # key -> (value, when learned)

    def get(self, key: str) -> V | None:
        held = self._held.get(key)
        if held is None:
            return None
        if time.monotonic() - held[1] > self.max_age_s:
            self._held.pop(key, None)
            return None
        return held[0]

    def put(self, key: str, value: V) -> None:
        if len(self._held) >= _MAX_REMEMBERED and key not in self._held:
            now = time.monotonic()
            self._held = {k: v for k, v in self._held.items() if now - v[1] <= self.max_age_s}
            if len(self._held) >= _MAX_REMEMBERED:
                self._held.clear()
        self._held[key] = (value, time.monotonic())

    def forget(self, key: str) -> None:
        self._held.pop(key, None)


class MapState:
    def __init__(
        self,
        entry: str,
        timeout_s: float,
        attempt_timeout_s: float,
        metadata: Metadata = (),
        spread_reads: bool = True,
    ) -> None:
        self.entry = entry  # the address the client was given: asked for the map, and the last resort
        self.timeout_s = timeout_s
        self.attempt_timeout_s = min(attempt_timeout_s, timeout_s)
        self.metadata = metadata  # sent with every call (the async client's token)
        self.health = PeerHealth()
        self.routing: RoutingTable | None = None
        self._fetched_at = 0.0
        self._spread = Spread()
        # False: every call starts at the key's primary, which coordinated (and applied) every write
        # acknowledged on it: what another client just wrote is read back (a one-shot CLI command).
        self.spread_reads = spread_reads
        self._wrote: _Recent[str] = _Recent(READ_YOUR_WRITES_S)  # key -> the replica that took the write
        self._salted: _Recent[int] = _Recent(SALTED_FOR_S)  # author -> salt buckets, as a Post said

    # -- the map ---------------------------------------------------------------------------------

    @property
    def stale(self) -> bool:
        """Missing, older than MAP_MAX_AGE_S, or known to be behind: fetch before the next call."""
        return self.routing is None or time.monotonic() - self._fetched_at > MAP_MAX_AGE_S

    def map_sources(self) -> list[str]:
        """Whom to ask for the map, in order: the entry address, then the known nodes that answer."""
        known = self.routing.all_addresses() if self.routing else []
        return [a for a in dict.fromkeys([self.entry, *known]) if self.health.allows(a)]

    def fetched(self, msg: feed_pb2.RoutingMap | None) -> None:
        """The answer of a map fetch (None: nobody answered; try again after MAP_MAX_AGE_S). The
        newest map seen is kept: a lagging node never takes the client back an epoch."""
        if msg is not None:
            table = RoutingTable.from_proto(msg)
            if self.routing is None or table.epoch >= self.routing.epoch:
                self.routing = table
        self._fetched_at = time.monotonic()

    # -- one call --------------------------------------------------------------------------------

    def attempts(self, method: str, key: str, request: Any = None) -> Attempts:
        key = self._routing_key(method, key, request)
        read = method in READS
        replicas = (
            self._spread.order(key, self.routing.replicas(key), self.spread_reads and method in SPREAD_READS)
            if self.routing
            else []
        )
        if read:
            replicas = self._after_own_write(key, replicas)
        healthy = [a for a in replicas if self.health.allows(a)]
        targets = healthy + [a for a in replicas if a not in healthy]
        if self.entry not in targets:
            targets.append(self.entry)
        epoch: Metadata = ((MAP_EPOCH_KEY, str(self.routing.epoch)),) if self.routing else ()
        return Attempts(self, method, key, targets, (*self.metadata, *epoch))

    def _routing_key(self, method: str, key: str, request: Any) -> str:
        """The key whose replicas take the call: `key`, except for the Post of an author known to
        be salted, which goes to the salted key its request_id picks (feed/posts.py stores it there)."""
        request_id = getattr(request, "request_id", "") if method == "Post" else ""
        buckets = self._salted.get(key) if request_id else None
        if buckets is None:
            return key
        return salting.salted_key(key, salting.request_salt(request_id, buckets))

    def _learn_salting(self, author: str, trailing: Sequence[tuple[str, Any]] | None) -> None:
        buckets = next((v for k, v in trailing or () if k == SALT_BUCKETS_KEY), None)
        try:
            count = int(buckets) if buckets is not None else 0
        except ValueError:
            count = 0
        if count < 1:
            self._salted.forget(author)  # not (or no longer) salted: its posts go home
        else:
            self._salted.put(author, count)

    def _after_own_write(self, key: str, replicas: list[str]) -> list[str]:
        address = self._wrote.get(key)
        if address is None:
            return replicas
        return [address, *(a for a in replicas if a != address)]

    def _remember_write(self, key: str, address: str) -> None:
        self._wrote.put(key, address)

    def _refetch_soon(self) -> None:
        self._fetched_at = 0.0

    # -- a stream (a watch): one target at a time, for as long as it lasts --------------------------

    def stream_target(self, key: str) -> tuple[str, Metadata]:
        """Where to open a stream of `key`: its first healthy replica (primary first: every replica
        hears the key's writes), else the entry address; and the metadata to send."""
        attempts = self.attempts("WatchTimeline", key)
        return attempts.targets[0], attempts.metadata

    def stream_failed(self, address: str) -> None:
        """A stream to `address` broke: try the next replica, with a fresh map (a move may be why)."""
        self.health.failed(address)
        self._refetch_soon()


class Attempts:
    """One call's targets, tried in order: iterate for (address, timeout, metadata); report each
    attempt's outcome with answered() or failed()."""

    def __init__(self, state: MapState, method: str, key: str, targets: list[str], metadata: Metadata) -> None:
        self._state = state
        self.method = method
        self._key = key
        self.targets = targets
        self.metadata = metadata
        self._deadline = time.monotonic() + state.timeout_s
        self._last = False
        self._unanswered = False  # an attempt that may have been applied without our hearing of it
        self._sending = False  # an attempt outstanding, counted by the spread

    def __iter__(self) -> Iterator[tuple[str, float, Metadata]]:
        try:
            for i, address in enumerate(self.targets):
                left = self._deadline - time.monotonic()
                self._last = i == len(self.targets) - 1 or left <= 0
                timeout = left if self._last else min(self._state.attempt_timeout_s, left)
                self._state._spread.started()
                self._sending = True
                yield address, max(timeout, 0.001), self.metadata
                self._ended()
                if self._last:
                    return
        finally:
            self._ended()  # a caller that stopped asking: cancelled, or gave up on an error

    def _ended(self) -> None:
        """The attempt under way (if any) is no longer outstanding."""
        if self._sending:
            self._state._spread.ended()
            self._sending = False

    def answered(self, address: str, trailing: Sequence[tuple[str, Any]] | None) -> None:
        self._ended()
        state = self._state
        state.health.succeeded(address)
        if self.method not in READS:
            home, _ = salting.home_of(self._key)  # reads ask by the author, never by a salted key
            state._remember_write(home, address)
            if self.method == "Post":
                state._learn_salting(home, trailing)
        if self._unanswered or any(k == MAP_EPOCH_KEY for k, _ in trailing or ()):
            state._refetch_soon()  # a failure, or a newer map out there: fetch it before the next call

    def failed(self, address: str, exc: grpc.RpcError) -> bool:
        """Whether the call is settled after all: a DeletePost whose earlier, unanswered attempt
        deleted the post. Otherwise returns False to go on to the next target, or raises `exc` when
        it is not a failure to fail over on, or this was the last target."""
        self._ended()
        code = status_of(exc).code
        if self.method == "DeletePost" and code == grpc.StatusCode.NOT_FOUND and self._unanswered:
            return True
        if self._last or code not in _FAIL_OVER:
            raise exc
        self._state.health.failed(address)
        self._unanswered = True
        return False
