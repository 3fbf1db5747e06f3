"""The stateless routing tier: validates, assigns post ids, routes keys to nodes, merges timelines.

Delivery into followers' inboxes is the nodes' job (node/delivery.py); a router holds nothing durable."""
