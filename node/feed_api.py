"""The public Feed API a node serves beside Storage, so a client that knows the map reads in one hop.

It is the routers' Feed API (feed/: validation, post ids, follows, the timeline merge with hot users'
posts, the hot-post cache, paging), built over this node's own storage client: keys whose partitions
this node holds are read and written through its Storage handlers in process (no gRPC, no protobuf
round trip: common/local_transport.py), with its own replica tried first; other keys go to their
nodes over gRPC exactly as a router sends them (Cassandra's coordinator). Post ids come from the
generator the cluster map gives this node.
"""

from __future__ import annotations

from common.config import ClusterConfig
from common.errors import Unavailable
from feed.flows import FeedFlows
from feed.post_ids import PostIdGenerator
from node.build import Node

__all__ = ["MemberPostIds", "feed_flows"]


class MemberPostIds:
    """Post ids from this node's generator in the cluster map (none until the node is a member)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._generator: PostIdGenerator | None = None

    def next_id(self) -> int:
        try:
            generator = self.node.ownership.map.generator(self.node.node_id)
        except KeyError:
            raise Unavailable(
                f"node {self.node.node_id} is not a member of the cluster yet: it assigns no post ids"
            ) from None
        if self._generator is None or self._generator.generator != generator:
            self._generator = PostIdGenerator(generator)
        return self._generator.next_id()


def feed_flows(config: ClusterConfig, node: Node) -> FeedFlows:
    """The Feed API's flows over this node, whose writes wake the watch streams they concern."""
    flows = FeedFlows.build(config, node.peers, MemberPostIds(node), hears_writes=True)
    node.data.on_timeline_change(flows.watch.hub.changed)
    return flows
