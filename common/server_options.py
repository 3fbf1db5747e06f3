"""gRPC server options every feedring server (node and router) shares."""

from __future__ import annotations

from typing import Any

__all__ = ["pending_calls_options"]

# Calls gRPC's core has received but Python has not yet picked up. Past the soft limit (default
# 1,000) core refuses new ones; past the hard limit (default 3,000) it cancels them and sends the
# connection GOAWAY: measured, a burst of 3,000 calls over 10 connections then got ~700 bare
# CANCELLEDs. Higher limits let every call reach max_concurrent_rpcs, which answers the excess
# RESOURCE_EXHAUSTED at once. A pending call holds at most its stream's flow-control window.
MAX_PENDING_REQUESTS = 16_384


def pending_calls_options() -> list[tuple[str, Any]]:
    return [
        ("grpc.server.max_pending_requests", MAX_PENDING_REQUESTS),
        ("grpc.server.max_pending_requests_hard_limit", 4 * MAX_PENDING_REQUESTS),
    ]
