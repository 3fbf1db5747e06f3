"""A router's flows, wired together over one storage client.

Router workers serve them (router/server.py); the in-memory cluster twin of the unit tests
(tests/inmem_cluster.py) drives the very same objects over its in-process transport.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.config import ClusterConfig
from common.storage_client import StorageClient
from router.admin_service import AdminServicer
from router.bulk_load import BulkLoader
from router.feed_service import FeedServicer
from router.follows import Follows
from router.hot_cache import HotPostCache
from router.hot_users import HotUsers
from router.membership import MembershipChanges
from router.post_ids import PostIdGenerator
from router.posts import Posts
from router.salted_reads import SaltedReads
from router.timeline import TimelineReader

__all__ = ["RouterFlows"]


@dataclass
class RouterFlows:
    config: ClusterConfig
    storage: StorageClient
    reads: SaltedReads
    hot: HotUsers
    cache: HotPostCache
    follows: Follows
    posts: Posts
    timeline: TimelineReader
    bulk: BulkLoader
    membership: MembershipChanges

    @classmethod
    def build(cls, config: ClusterConfig, storage: StorageClient, ids: PostIdGenerator) -> RouterFlows:
        hot_conf = config.hot
        reads = SaltedReads(storage, hot_conf.salt_buckets)
        hot = HotUsers(config, storage, reads)
        cache = HotPostCache(hot_conf.cache_max_entries, hot_conf.cache_posts_per_user, hot_conf.cache_ttl_ms)
        return cls(
            config=config,
            storage=storage,
            reads=reads,
            hot=hot,
            cache=cache,
            follows=Follows(config, storage, hot, reads),
            posts=Posts(config, storage, hot, cache, ids),
            timeline=TimelineReader(storage, reads, cache),
            bulk=BulkLoader(config, storage, hot),
            membership=MembershipChanges(storage),
        )

    def feed_service(self) -> FeedServicer:
        return FeedServicer(self.config, self.storage, self.hot, self.reads, self.follows, self.posts, self.timeline)

    def admin_service(self) -> AdminServicer:
        return AdminServicer(self.storage, self.hot, self.cache, self.bulk, self.membership)
