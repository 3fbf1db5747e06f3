"""Shared by node, router and client: configuration, errors, partitioning and the cluster map."""
