"""Feed calls sent straight to a node holding their key (one hop), with fail-over.

The client fetches the routing map (feed.proto's GetRoutingMap) from the address it was given (a
router or a node) and then sends each Feed call to a replica of the key that decides it
(client/routing.py), spreading reads over the replicas by key. A replica that does not answer (refused,
reset, or silent past the attempt deadline: a killed or stopped process) is skipped for a while
(common/peer_health.py's circuit breaker) and the call goes to the next replica, then to the address
the client was given. Reads of a key this client wrote in the last READ_YOUR_WRITES_S go first to the
replica that took the write (it coordinated the write and applied it before answering; another
replica may be a moment behind the write's quorum), so a client sees its own follows, unfollows,
posts and deletes on its next read. The map is refreshed after such a failure, when an answer says a newer map
exists (every call carries its map's epoch), and when it is older than MAP_MAX_AGE_S: a membership
change is followed without the caller seeing it. Every call carried
to another replica is safe to repeat: reads, follows and unfollows are idempotent; a Post carries a
request_id so a retry stores nothing new; a DeletePost retried after an unanswered attempt that did
delete counts as done.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import grpc

from client.credentials import with_token
from client.routing import READS, RoutingTable, Spread
from common.grpc_status import MAP_EPOCH_KEY
from common.peer_health import PeerHealth
from common.tls import client_credentials
from protos import feed_pb2, feed_pb2_grpc

__all__ = ["MapAwareCalls", "MAP_MAX_AGE_S"]

MAP_MAX_AGE_S = 5.0
READ_YOUR_WRITES_S = 10.0  # how long reads of a written key go to the replica that took the write
_MAX_WRITTEN_KEYS = 10_000
_FAIL_OVER = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


class MapAwareCalls:
    def __init__(
        self,
        entry: str,
        entry_stub: feed_pb2_grpc.FeedStub,
        token: str | None,
        ca_file: Path | None,
        timeout_s: float,
        attempt_timeout_s: float,
    ) -> None:
        self.entry = entry  # the address the client was given: asked for the map, and the last resort
        self._entry_stub = entry_stub
        self._token = token
        self._ca_file = ca_file
        self.timeout_s = timeout_s
        self.attempt_timeout_s = min(attempt_timeout_s, timeout_s)
        self.health = PeerHealth()
        self.routing: RoutingTable | None = None
        self._fetched_at = 0.0
        self._spread = Spread()
        self._lock = threading.Lock()
        self._channels: dict[str, grpc.Channel] = {}
        self._stubs: dict[str, feed_pb2_grpc.FeedStub] = {}
        self._wrote: dict[str, tuple[str, float]] = {}  # key -> (replica that took the write, when)

    # -- the map ---------------------------------------------------------------------------------

    def table(self) -> RoutingTable | None:
        """The routing map, fetched when missing or older than MAP_MAX_AGE_S (None: nobody answered
        with one, e.g. a router of an older version: calls go to the entry address)."""
        if self.routing is None or time.monotonic() - self._fetched_at > MAP_MAX_AGE_S:
            self.refresh()
        return self.routing

    def refresh(self) -> None:
        """Asks the entry address, then the known nodes, for the map; keeps the newest seen."""
        candidates = [self.entry] + (self.routing.all_addresses() if self.routing else [])
        for address in dict.fromkeys(candidates):
            if not self.health.allows(address):
                continue
            try:
                msg = self._stub(address).GetRoutingMap(
                    feed_pb2.GetRoutingMapRequest(), timeout=self.attempt_timeout_s
                )
            except grpc.RpcError:
                continue
            table = RoutingTable.from_proto(msg)
            if self.routing is None or table.epoch >= self.routing.epoch:
                self.routing = table
            self._fetched_at = time.monotonic()
            return
        self._fetched_at = time.monotonic()  # nobody answered: try again after MAP_MAX_AGE_S

    # -- calls -----------------------------------------------------------------------------------

    def call(self, method: str, key: str, request: Any) -> Any:
        """Sends one Feed call to a replica of `key` (then the next, then the entry address)."""
        table = self.table()
        read = method in READS
        replicas = self._spread.order(key, table.replicas(key), read) if table else []
        if read:
            replicas = self._after_own_write(key, replicas)
        targets = [a for a in replicas if self.health.allows(a)] + [a for a in replicas if not self.health.allows(a)]
        if self.entry not in targets:
            targets.append(self.entry)
        deadline = time.monotonic() + self.timeout_s
        unanswered = False  # an attempt that may have been applied without our hearing of it
        for i, address in enumerate(targets):
            left = deadline - time.monotonic()
            last = i == len(targets) - 1 or left <= 0
            timeout = left if last else min(self.attempt_timeout_s, left)
            epoch = ((MAP_EPOCH_KEY, str(table.epoch)),) if table else None
            try:
                reply, call = getattr(self._stub(address), method).with_call(
                    request, timeout=max(timeout, 0.001), metadata=epoch
                )
            except grpc.RpcError as exc:
                code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
                if method == "DeletePost" and code == grpc.StatusCode.NOT_FOUND and unanswered:
                    return feed_pb2.DeletePostResponse()  # the unanswered attempt deleted it
                if last or code not in _FAIL_OVER:
                    raise
                self.health.failed(address)
                unanswered = True
                continue
            self.health.succeeded(address)
            if not read:
                self._remember_write(key, address)
            if unanswered or any(k == MAP_EPOCH_KEY for k, _ in call.trailing_metadata() or ()):
                self._fetched_at = 0.0  # a failure, or a newer map out there: fetch it on the next call
            return reply
        raise AssertionError("unreachable: the last target raises")

    def _after_own_write(self, key: str, replicas: list[str]) -> list[str]:
        wrote = self._wrote.get(key)
        if wrote is None:
            return replicas
        address, at = wrote
        if time.monotonic() - at > READ_YOUR_WRITES_S:
            self._wrote.pop(key, None)
            return replicas
        return [address, *(a for a in replicas if a != address)]

    def _remember_write(self, key: str, address: str) -> None:
        if len(self._wrote) >= _MAX_WRITTEN_KEYS:
            now = time.monotonic()
            self._wrote = {k: v for k, v in self._wrote.items() if now - v[1] <= READ_YOUR_WRITES_S}
            if len(self._wrote) >= _MAX_WRITTEN_KEYS:
                self._wrote.clear()
        self._wrote[key] = (address, time.monotonic())

    def _stub(self, address: str) -> feed_pb2_grpc.FeedStub:
        if address == self.entry:
            return self._entry_stub
        stub = self._stubs.get(address)
        if stub is None:
            with self._lock:
                stub = self._stubs.get(address)
                if stub is None:
                    channel = (
                        grpc.secure_channel(address, client_credentials(self._ca_file))
                        if self._ca_file
                        else grpc.insecure_channel(address)
                    )
                    self._channels[address] = channel
                    stub = self._stubs[address] = feed_pb2_grpc.FeedStub(with_token(channel, self._token))
        return stub

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()
        self._stubs.clear()

