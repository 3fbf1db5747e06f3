"""Feed calls sent straight to a node holding their key (one hop), with fail-over: FeedClient's
sender. What to try, in what order and for how long is decided in client/attempts.py (shared with
AsyncFeedClient); this module sends it over blocking channels.

The client fetches the routing map (feed.proto's GetRoutingMap) from the address it was given (a
router or a node) and then sends each Feed call to a replica of the key that decides it
(client/routing.py), spreading timeline reads over the replicas (by key while it has calls in
flight, else to the node it prefers). A replica that does not answer (refused, reset, silent past
the attempt deadline, or cancelling the call as it shuts down: a killed, stopped or restarting
process) is skipped for a while
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
from pathlib import Path
from typing import Any

import grpc

from client.attempts import MAP_MAX_AGE_S, MapState
from client.credentials import with_token
from client.routing import RoutingTable
from common.tls import client_credentials
from protos import feed_pb2, feed_pb2_grpc

__all__ = ["MapAwareCalls", "MAP_MAX_AGE_S"]


class MapAwareCalls:
    """The blocking client's sender: client/attempts.py decides, this sends."""

    def __init__(
        self,
        entry: str,
        entry_stub: feed_pb2_grpc.FeedStub,
        token: str | None,
        ca_file: Path | None,
        timeout_s: float,
        attempt_timeout_s: float,
        spread_reads: bool = True,
    ) -> None:
        self.state = MapState(entry, timeout_s, attempt_timeout_s, spread_reads=spread_reads)
        self._entry_stub = entry_stub
        self._token = token
        self._ca_file = ca_file
        self._lock = threading.Lock()
        self._channels: dict[str, grpc.Channel] = {}
        self._stubs: dict[str, feed_pb2_grpc.FeedStub] = {}

    @property
    def routing(self) -> RoutingTable | None:
        return self.state.routing

    @routing.setter
    def routing(self, table: RoutingTable | None) -> None:
        self.state.routing = table

    def table(self) -> RoutingTable | None:
        """The routing map, fetched when missing or older than MAP_MAX_AGE_S (None: nobody answered
        with one, e.g. a router of an older version: calls go to the entry address)."""
        if self.state.stale:
            self.refresh()
        return self.state.routing

    def refresh(self) -> None:
        """Asks the entry address, then the known nodes, for the map; keeps the newest seen."""
        for address in self.state.map_sources():
            try:
                msg = self._stub(address).GetRoutingMap(
                    feed_pb2.GetRoutingMapRequest(), timeout=self.state.attempt_timeout_s
                )
            except grpc.RpcError:
                continue
            self.state.fetched(msg)
            return
        self.state.fetched(None)

    def call(self, method: str, key: str, request: Any) -> Any:
        """Sends one Feed call to a replica of `key` (then the next, then the entry address)."""
        self.table()
        attempts = self.state.attempts(method, key, request)
        for address, timeout, metadata in attempts:
            try:
                reply, call = getattr(self._stub(address), method).with_call(
                    request, timeout=timeout, metadata=metadata or None
                )
            except grpc.RpcError as exc:
                if attempts.failed(address, exc):
                    return feed_pb2.DeletePostResponse()  # the unanswered attempt deleted it
                continue
            attempts.answered(address, call.trailing_metadata())
            return reply
        raise AssertionError("unreachable: the last target answers or raises")

    def stream_target(self, key: str) -> tuple[str, feed_pb2_grpc.FeedStub, tuple[tuple[str, str], ...]]:
        """Where to open a stream of `key` (client/attempts.py), its stub and metadata."""
        self.table()
        address, metadata = self.state.stream_target(key)
        return address, self._stub(address), metadata

    def _stub(self, address: str) -> feed_pb2_grpc.FeedStub:
        if address == self.state.entry:
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
