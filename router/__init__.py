"""The stateless routing tier: validates, routes keys to nodes, fans out, merges timelines."""
