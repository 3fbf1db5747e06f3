"""Registering a gRPC service from handlers, rather than from one generated servicer class.

The generated ``add_*Servicer_to_server`` serializes each reply with the declared response class's
own method, which refuses any other class, and takes every method from one object. Here a service's
methods may come from several objects (a node's Storage service is answered by four servicers, one
job each) and a reply may be a wire-identical message of another class (feed/feed_service.py: a
timeline page built from stored posts, storage_pb2.EncodedPostPage): its serializer asks the reply
itself. Request classes come from the service descriptor; unary and server-streaming methods are
supported, and handlers are registered by method as well as generically.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message

from common.call_guards import GuardedServer

__all__ = ["add_service", "add_unary_servicer", "handlers_of"]


def _serialize(reply: Message) -> bytes:
    encoded: bytes = reply.SerializeToString()
    return encoded


def handlers_of(service: ServiceDescriptor, *servicers: Any) -> dict[str, Any]:
    """Each method of `service`, from the first servicer that defines it; every method must be."""
    handlers: dict[str, Any] = {}
    for method in service.methods:
        for servicer in servicers:
            handler = getattr(servicer, method.name, None)
            if handler is not None:
                handlers[method.name] = handler
                break
        else:
            raise ValueError(f"nothing serves {service.full_name}.{method.name}")
    return handlers


def add_service(
    server: GuardedServer | grpc.aio.Server, service: ServiceDescriptor, handlers: Mapping[str, Any]
) -> None:
    """Registers `service` on `server` (behind its call guards): each method answered by
    `handlers[name](request, context)`."""
    rpc_handlers = {}
    for method in service.methods:
        if method.client_streaming:
            raise ValueError(f"{service.full_name}.{method.name} takes a stream: not supported here")
        request_class = message_factory.GetMessageClass(method.input_type)
        make = grpc.unary_stream_rpc_method_handler if method.server_streaming else grpc.unary_unary_rpc_method_handler
        rpc_handlers[method.name] = make(
            handlers[method.name], request_deserializer=request_class.FromString, response_serializer=_serialize
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, rpc_handlers),))
    server.add_registered_method_handlers(service.full_name, rpc_handlers)


def add_unary_servicer(servicer: Any, service: ServiceDescriptor, server: GuardedServer | grpc.aio.Server) -> None:
    """Registers every method of `service` on `server`, served by `servicer`."""
    add_service(server, service, handlers_of(service, servicer))
