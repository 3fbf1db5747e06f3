"""Which users are hot, as every router sees it, and the work that moves a user between states.

The truth is the registry on each user's home partition (nodes start transitions when a follower
count crosses a mark; see common/hot_state.py). Every router polls all nodes every
``POLL_S`` seconds, so all routers agree within about a second, and learns sooner from the
state a node returns with a follow or a post.

A transition's work is idempotent, so any router that sees a user in MIGRATING or COOLING runs it
(one task per user per router), and a router that crashed midway is simply replaced by the next:
- MIGRATING: mark the user merged-at-read for every follower, then set HOT. Until then posts are
  still fanned out, so no follower misses one.
- COOLING: copy the user's newest posts into every follower's inbox and unmark, then set COLD.
  Fan-out has already resumed, so again no follower misses one.
Users listed in cluster.toml's ``hot_users`` are pinned: made hot at start and never cooled.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import replace

from common.config import ClusterConfig
from common.errors import FeedringError
from common.hot_state import HotState, HotUser
from common.storage_client import StorageClient
from feed.salted_reads import SaltedReads
from protos import feed_pb2, storage_pb2

__all__ = ["HotUsers"]

log = logging.getLogger(__name__)

POLL_S = 0.5


class HotUsers:
    def __init__(self, config: ClusterConfig, storage: StorageClient, reads: SaltedReads) -> None:
        self.config = config
        self.storage = storage
        self.reads = reads
        self._views: dict[str, HotUser] = {}
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._unpinned = set(config.hot.users)

    def state(self, user: str) -> HotState:
        view = self._views.get(user)
        return view.state if view else HotState.NORMAL

    def views(self) -> list[HotUser]:
        return sorted(self._views.values(), key=lambda v: v.user)

    def hot_now(self) -> list[str]:
        """Users whose posts are (or are about to be) merged at read time."""
        return [v.user for v in self.views() if v.state.is_hot]

    def learn(self, user: str, state: HotState) -> None:
        """A node just told us the user's state (with a follow or a post): act on it now."""
        old = self._views.get(user)
        if old is None and state is HotState.NORMAL:
            return
        self._views[user] = replace(old, state=state) if old else HotUser(user, state)
        if state.transitional:
            self._ensure_job(user, state)

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        await self._pin_configured()
        try:
            await self.refresh()
        except FeedringError as exc:
            log.warning("hot-user registry not readable yet: %s", exc.message)
        self._poller = asyncio.create_task(self._poll_forever())

    async def stop(self) -> None:
        tasks = [t for t in [self._poller, *self._jobs.values()] if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _pin_configured(self) -> None:
        """Pins the users cluster.toml lists; a user whose node is down is tried again every poll."""
        for user in sorted(self._unpinned):
            try:
                reply = await self.storage.set_hot_state.by_key(
                    user,
                    storage_pb2.SetHotStateRequest(user=user, state="MIGRATING", expect=["NORMAL", "COLD"], pin=True),
                )
                if not reply.changed:  # already hot or on its way: just pin it where it is
                    current = HotState(reply.state)
                    await self.storage.set_hot_state.by_key(
                        user,
                        storage_pb2.SetHotStateRequest(user=user, state=current.name, expect=[current.name], pin=True),
                    )
            except FeedringError as exc:
                log.warning("could not pin configured hot user user=%s error=%s", user, exc.message)
                continue
            self._unpinned.discard(user)

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            try:
                if self._unpinned:
                    await self._pin_configured()
                await self.refresh()
            except FeedringError as exc:
                log.debug("hot-user poll incomplete: %s", exc.message)
            except Exception:
                log.exception("hot-user poll failed")

    async def refresh(self) -> None:
        """Reads every node's registry. A node that does not answer keeps its users' last state."""
        members = [m.id for m in self.storage.map.members]
        replies = await asyncio.gather(
            *(
                self.storage.list_hot_users.on_node(n, storage_pb2.ListHotUsersRequest(), timeout_s=2.0)
                for n in members
            ),
            return_exceptions=True,
        )
        views: dict[str, HotUser] = {}
        answered = set()
        for node_id, reply in zip(members, replies, strict=True):
            if isinstance(reply, BaseException):
                continue
            answered.add(node_id)
            for e in reply.users:
                # Every replica of a home partition lists its users: the newest entry wins.
                if e.user not in views or e.version > views[e.user].version:
                    views[e.user] = HotUser(e.user, HotState(e.state), e.pinned, e.follower_count, e.version)
        cluster_map = self.storage.map
        for user, view in self._views.items():
            if user not in views and not answered & set(cluster_map.replicas(cluster_map.partition(user))):
                views[user] = view
        for user, view in views.items():
            old = self._views.get(user)
            if old is None or old.state != view.state:
                log.info("hot user state user=%s state=%s followers=%d", user, view.state.name, view.follower_count)
            if view.state.transitional:
                self._ensure_job(user, view.state)
        self._views = views

    # -- transitions -----------------------------------------------------------------------------

    def _ensure_job(self, user: str, state: HotState) -> None:
        job = self._jobs.get(user)
        if job is not None and not job.done():
            return
        task = asyncio.create_task(self._run_transition(user, state))
        self._jobs[user] = task
        task.add_done_callback(functools.partial(self._job_done, user))

    def _job_done(self, user: str, _task: asyncio.Task[None]) -> None:
        self._jobs.pop(user, None)

    async def _run_transition(self, user: str, state: HotState) -> None:
        try:
            if state is HotState.MIGRATING:
                await self._mark_followers(user, hot=True, posts=[])
                final = HotState.HOT
            else:
                recent = await self.reads.posts(user, state, self.config.limits.backfill_posts)
                await self._mark_followers(user, hot=False, posts=recent)
                final = HotState.COLD
            reply = await self.storage.set_hot_state.by_key(
                user, storage_pb2.SetHotStateRequest(user=user, state=final.name, expect=[state.name])
            )
            if reply.changed:
                log.info("hot user transition done user=%s %s->%s", user, state.name, final.name)
            self.learn(user, HotState(reply.state))
        except FeedringError as exc:
            # The next poll sees the same transitional state and tries again.
            log.warning("hot user transition interrupted user=%s state=%s error=%s", user, state.name, exc.message)

    async def _mark_followers(self, user: str, hot: bool, posts: list[feed_pb2.Post]) -> None:
        marked = 0
        async for page in self.reads.follower_pages(user, HotState.HOT):
            groups = self.storage.group_by_node(page)
            await asyncio.gather(
                *(
                    self.storage.set_hot_following.on_node(
                        node_id,
                        storage_pb2.SetHotFollowingRequest(followee=user, consumers=consumers, hot=hot, posts=posts),
                    )
                    for node_id, consumers in groups.items()
                )
            )
            marked += len(page)
        log.info("followers %s user=%s followers=%d", "marked hot" if hot else "unmarked", user, marked)
