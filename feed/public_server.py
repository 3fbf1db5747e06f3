"""The gRPC server of the public APIs, as routers and nodes both run it: the same checks in front of
the Feed API wherever it is served.

Interceptors, outermost first: metrics (refused calls count too), authentication
(common/security.py: Feed calls are open unless `feed_requires_token`), per-method request sizes
(feed/request_limits.py); the server answers at most `limits.max_concurrent_rpcs` calls at once, plus
`limits.max_watch_streams` open watch streams.
Clients are served over TLS when the cluster has it (no client certificate asked: tokens decide).
Health and reflection are on, so load balancers, grpcurl and reflection-only clients work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from common import metrics, security
from common.config import ClusterConfig
from common.grpc_status import MAP_EPOCH_KEY
from common.service_handlers import add_unary_servicer
from feed import request_limits
from feed.feed_service import FeedServicer
from protos import feed_pb2

__all__ = ["public_server", "FEED_SERVICE", "MapEpochInterceptor", "add_feed", "listen", "serving"]

FEED_SERVICE = feed_pb2.DESCRIPTOR.services_by_name["Feed"]


class MapEpochInterceptor(grpc.aio.ServerInterceptor):
    """Tells a map-aware client its routing map is older than this process's (nothing otherwise)."""

    def __init__(self, epoch: Callable[[], int]) -> None:
        self.epoch = epoch

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        theirs = next((v for k, v in handler_call_details.invocation_metadata or () if k == MAP_EPOCH_KEY), None)
        if handler is None or theirs is None or handler.unary_unary is None:
            return handler
        ours = self.epoch()
        try:
            stale = int(theirs) < ours
        except ValueError:
            stale = False
        if not stale:
            return handler
        inner = handler.unary_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            context.set_trailing_metadata(((MAP_EPOCH_KEY, str(ours)),))
            return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(unary, handler.request_deserializer, handler.response_serializer)


def public_server(
    config: ClusterConfig,
    credentials: security.Credentials,
    *,
    with_metrics: bool,
    reuse_port: bool = False,
    map_epoch: Callable[[], int] | None = None,
) -> grpc.aio.Server:
    interceptors: list[grpc.aio.ServerInterceptor] = [
        security.AuthInterceptor(credentials),
        request_limits.RequestSizeInterceptor(request_limits.method_limits(config)),
    ]
    if map_epoch is not None:
        interceptors.append(MapEpochInterceptor(map_epoch))
    if with_metrics:
        interceptors.insert(0, metrics.MetricsInterceptor())
    return grpc.aio.server(
        interceptors=interceptors,
        options=[("grpc.so_reuseport", 1 if reuse_port else 0), *request_limits.server_options()],
        # Open watch streams hold a call each: they have their own bound (feed/timeline_watch.py).
        maximum_concurrent_rpcs=config.limits.max_concurrent_rpcs + config.limits.max_watch_streams,
    )


def add_feed(
    server: grpc.aio.Server, feed_service: FeedServicer, health_servicer: health.aio.HealthServicer, *more: str
) -> None:
    """The Feed API, health, and reflection of Feed and of the services named in `more`."""
    # GetTimeline answers with stored bytes (an EncodedPostPage): see common/service_handlers.py.
    add_unary_servicer(feed_service, FEED_SERVICE, server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (FEED_SERVICE.full_name, *more, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )


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
