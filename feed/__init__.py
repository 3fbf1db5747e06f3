"""The public Feed API (feedring.v1.Feed) and the flows behind it, run by routers and by nodes alike.

Validation, post ids, where a post is stored, follows, the home-timeline merge with hot users' posts,
the hot-user view and its cache. Everything reaches the storage nodes through one typed storage client
(common/storage_client.py): a router's goes over gRPC; a node's reads its own partitions in process
(node/feed_api.py), so a client that knows the map reads a timeline in one hop.
"""
