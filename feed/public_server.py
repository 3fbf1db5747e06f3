"""The gRPC server of the public APIs, as routers and nodes both run it: the same checks in front of
the Feed API wherever it is served.

In front of every method, the call guards (common/call_guards.py): metrics (refused calls count
too), authentication (common/security.py: Feed calls are open unless `feed_requires_token`),
per-method request sizes (feed/request_limits.py), and the map epoch note. The server answers at
most `limits.max_concurrent_rpcs` calls at once, plus `limits.max_watch_streams` open watch streams.
Clients are served over TLS when the cluster has it (no client certificate asked: tokens decide).
Health and reflection are on, so load balancers, grpcurl and reflection-only clients work.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from common import security
from common.call_guards import CallGuards, GuardedServer
from common.config import ClusterConfig
from common.service_handlers import add_service, handlers_of
from feed import request_limits
from feed.feed_service import FeedServicer
from protos import feed_pb2

__all__ = ["public_server", "FEED_SERVICE", "add_feed", "listen", "serving"]

FEED_SERVICE = feed_pb2.DESCRIPTOR.services_by_name["Feed"]


def public_server(
    config: ClusterConfig,
    credentials: security.Credentials,
    *,
    with_metrics: bool,
    reuse_port: bool = False,
    map_epoch: Callable[[], int] | None = None,
) -> GuardedServer:
    """A server whose services are registered behind the call guards; `map_epoch`: this process's
    map epoch, told to map-aware clients whose map is older."""
    server = grpc.aio.server(
        options=[("grpc.so_reuseport", 1 if reuse_port else 0), *request_limits.server_options()],
        # Open watch streams hold a call each: they have their own bound (feed/timeline_watch.py).
        maximum_concurrent_rpcs=config.limits.max_concurrent_rpcs + config.limits.max_watch_streams,
    )
    guards = CallGuards(credentials, with_metrics, request_limits.method_sizes(config), map_epoch)
    return GuardedServer(server, guards)


def add_feed(
    server: GuardedServer,
    feed_service: FeedServicer,
    health_servicer: health.aio.HealthServicer,
    *more: str,
    served_first_by: object | None = None,
) -> None:
    """The Feed API, health, and reflection of Feed and of the services named in `more`. The Feed
    methods `served_first_by` defines are answered by it (a router's read relay), the rest by
    `feed_service`."""
    # GetTimeline answers with stored bytes (an EncodedPostPage): see common/service_handlers.py.
    servicers = (served_first_by, feed_service) if served_first_by is not None else (feed_service,)
    add_service(server, FEED_SERVICE, handlers_of(FEED_SERVICE, *servicers))
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    # The asyncio servicer, named: enable_server_reflection picks it only for a grpc.aio.Server.
    names = (FEED_SERVICE.full_name, *more, health.SERVICE_NAME, reflection.SERVICE_NAME)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(reflection.aio.ReflectionServicer(names), server)


def listen(server: grpc.aio.Server, address: str, tls_credentials: grpc.ServerCredentials | None) -> int:
    try:
        port = (
            server.add_secure_port(address, tls_credentials)
            if tls_credentials is not None
            else server.add_insecure_port(address)
        )
    except RuntimeError as exc:
        raise RuntimeError(f"cannot listen on {address}: {exc}") from exc
    if port == 0:
        raise RuntimeError(f"cannot listen on {address}: address in use")
    return int(port)


async def serving(health_servicer: health.aio.HealthServicer, *services: str) -> None:
    for service in ("", FEED_SERVICE.full_name, *services):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
