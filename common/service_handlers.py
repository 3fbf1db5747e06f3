"""Registering a generated gRPC servicer whose methods may answer with a wire-identical message.

The generated ``add_*Servicer_to_server`` serializes each reply with the declared response class's
own method, which refuses any other class. A method that answers with bytes it did not decode
(router/feed_service.py: a timeline page built from stored posts, storage_pb2.EncodedPostPage) needs
a serializer that asks the reply itself. Everything else is as generated: the request classes
come from the service descriptor, and the handlers are registered by method as well.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message

__all__ = ["add_unary_servicer"]


def _serialize(reply: Message) -> bytes:
    encoded: bytes = reply.SerializeToString()
    return encoded


def add_unary_servicer(servicer: Any, service: ServiceDescriptor, server: grpc.aio.Server) -> None:
    """Registers every (unary-unary) method of `service` on `server`, served by `servicer`."""
    handlers = {}
    for method in service.methods:
        if method.client_streaming or method.server_streaming:
            raise ValueError(f"{service.full_name}.{method.name} streams: register it as generated")
        request_class = message_factory.GetMessageClass(method.input_type)
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            getattr(servicer, method.name),
            request_deserializer=request_class.FromString,
            response_serializer=_serialize,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)
