"""A router's flows: the Feed API's (feed/flows.py) and the Admin API's, over one storage client.

Router workers serve them (router/server.py); the in-memory cluster twin of the unit tests
(tests/inmem_cluster.py) drives the very same objects over its in-process transport.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.config import ClusterConfig
from common.storage_client import StorageClient
from feed.flows import FeedFlows
from feed.post_ids import PostIds
from router.admin_service import AdminServicer
from router.bulk_load import BulkLoader
from router.membership import MembershipChanges

__all__ = ["RouterFlows"]


@dataclass(kw_only=True)
class RouterFlows(FeedFlows):
    bulk: BulkLoader
    membership: MembershipChanges

    @staticmethod
    def build(config: ClusterConfig, storage: StorageClient, ids: PostIds, hears_writes: bool = False) -> RouterFlows:
        feed = FeedFlows.build(config, storage, ids, hears_writes)
        return RouterFlows(
            **vars(feed), bulk=BulkLoader(config, storage, feed.hot), membership=MembershipChanges(storage)
        )

    def admin_service(self) -> AdminServicer:
        return AdminServicer(self.storage, self.hot, self.cache, self.bulk, self.membership)
