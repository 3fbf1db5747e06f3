"""Watching a timeline the way both clients do it: resume after any break, miss nothing, repeat nothing.

A WatchTimeline stream (feed.proto) can end at any moment: the node serving it killed or stopped, a
membership move, a reader that fell behind. The client then opens a new stream, to the next replica
of the user's inbox if that one failed, from its last id minus the server's look-back (an entry
may land a moment after newer ones: its delivery was delayed), and drops the ids it has already
given its caller. WatchCursor holds that state and Backoff the pauses between tries; both are
pure, so FeedClient and AsyncFeedClient only do the I/O.
"""

from __future__ import annotations

import time

import grpc

from client.results import Post, Removed
from protos import feed_pb2

__all__ = ["WatchCursor", "Backoff", "RESUMABLE", "LOOKBACK_IDS"]

# feed.proto: a stream resent entries up to 30 s (of post-id time: ids carry milliseconds from bit
# 22, feed/post_ids.py) below its after_id.
LOOKBACK_IDS = 30_000 << 22

# Stream endings after which a new stream is opened (anything else, e.g. INVALID_ARGUMENT, is raised).
RESUMABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,  # the node went away (killed, restarted, partitioned)
        grpc.StatusCode.CANCELLED,  # the server cut it (shutting down, or this reader stalled)
        grpc.StatusCode.RESOURCE_EXHAUSTED,  # that process serves its maximum of streams, or a stall
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.FAILED_PRECONDITION,  # a node that no longer holds the user (a move)
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)


class WatchCursor:
    """Where a watch is: the newest id given to the caller, and the ids given within the look-back."""

    def __init__(self, after_id: int, order_hold_ms: int = 0) -> None:
        self.floor = after_id  # the caller has everything up to here
        self.last = after_id
        self.order_hold_ms = order_hold_ms
        self._given: set[int] = set()

    def request(self, user: str) -> feed_pb2.WatchTimelineRequest:
        after_id = max(self.floor, self.last - LOOKBACK_IDS)
        return feed_pb2.WatchTimelineRequest(user=user, after_id=after_id, order_hold_ms=self.order_hold_ms)

    def take(self, event: feed_pb2.TimelineEvent) -> Post | Removed | None:
        """What to give the caller for one event (None: it has it already)."""
        if event.HasField("post"):
            post_id = event.post.id
            if post_id <= self.floor or post_id in self._given:
                return None
            self._given.add(post_id)
            if post_id > self.last:
                self.last = post_id
                low = self.last - LOOKBACK_IDS
                if len(self._given) > 64 and min(self._given) <= low:
                    self._given = {i for i in self._given if i > low}
            return Post.from_proto(event.post)
        return Removed(event.deleted_id)


class Backoff:
    """Pauses between new streams while none answers: 0.1 s doubling to 2 s; gives up after
    `give_up_s` without one event (then the caller sees the last failure)."""

    def __init__(self, give_up_s: float) -> None:
        self.give_up_s = give_up_s
        self._pause = 0.1
        self._failing_since: float | None = None

    def succeeded(self) -> None:
        self._pause, self._failing_since = 0.1, None

    def failed(self) -> float | None:
        """The pause before the next try, or None to give up."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        elif now - self._failing_since > self.give_up_s:
            return None
        pause, self._pause = self._pause, min(self._pause * 2, 2.0)
        return pause
