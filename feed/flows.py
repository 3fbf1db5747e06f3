"""The Feed API's flows, wired together over one storage client.

Routers (router/flows.py adds the Admin flows) and nodes (node/feed_api.py) serve them; the in-memory
cluster twin of the unit tests (tests/inmem_cluster.py) drives the very same objects.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.config import ClusterConfig
from common.storage_client import StorageClient
from feed.feed_service import FeedServicer
from feed.follows import Follows
from feed.hot_cache import HotPostCache
from feed.hot_users import HotUsers
from feed.merged_pages import MergedPages
from feed.post_ids import PostIds
from feed.posts import Posts
from feed.reader_activity import ReaderActivity
from feed.relations import Relations
from feed.salted_reads import SaltedReads
from feed.timeline import TimelineReader
from feed.timeline_watch import TimelineWatch
from feed.watch_hub import WatchHub

__all__ = ["FeedFlows"]


@dataclass
class FeedFlows:
    config: ClusterConfig
    storage: StorageClient
    reads: SaltedReads
    hot: HotUsers
    cache: HotPostCache
    follows: Follows
    relations: Relations
    posts: Posts
    timeline: TimelineReader
    watch: TimelineWatch

    @staticmethod
    def build(config: ClusterConfig, storage: StorageClient, ids: PostIds, hears_writes: bool = False) -> FeedFlows:
        """`hears_writes`: a node, whose writes wake the watch streams of the users they touch
        (it calls flows.watch.hub.changed), rather than a router, whose streams read on a timer.
        A node also keeps readers' first pages as merged with hot users' posts (its own replies come
        back as the same objects while unchanged: feed/merged_pages.py); a router keeps none."""
        hot_conf = config.hot
        reads = SaltedReads(storage, hot_conf.salt_buckets)
        hot = HotUsers(config, storage, reads)
        cache = HotPostCache(hot_conf.cache_max_entries, hot_conf.cache_posts_per_user, hot_conf.cache_ttl_ms)
        activity = ReaderActivity(config, storage, reads, hot)
        merged = MergedPages(config.storage.timeline_cache if hears_writes else 0)
        timeline = TimelineReader(storage, reads, cache, activity, merged)
        hub = WatchHub(config.limits.max_watch_streams, hears_writes)
        follows = Follows(config, storage, hot, reads)
        return FeedFlows(
            config=config,
            storage=storage,
            reads=reads,
            hot=hot,
            cache=cache,
            follows=follows,
            relations=Relations(storage, follows),
            posts=Posts(config, storage, hot, cache, ids),
            timeline=timeline,
            watch=TimelineWatch(timeline, hub, config.limits.timeline_cap),
        )

    def feed_service(self) -> FeedServicer:
        return FeedServicer(
            self.config,
            self.storage,
            self.hot,
            self.reads,
            self.follows,
            self.relations,
            self.posts,
            self.timeline,
            self.watch,
        )
