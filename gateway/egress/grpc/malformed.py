"""Requests that are not valid protobuf get INVALID_ARGUMENT and are counted, like a bad field.

Left alone, grpc answers UNKNOWN with the parser's exception text; this interceptor wraps every
unary-request handler's deserializer so the handler itself refuses the call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import inspect
from typing import Any

from google.protobuf.message import DecodeError
import grpc

from gateway.metrics import Metrics


class Malformed:
    """What the wrapped deserializer returns instead of a request it could not parse."""

    __slots__ = ()


MALFORMED = Malformed()


class MalformedRequests(grpc.aio.ServerInterceptor):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def _refuse(self, context: grpc.aio.ServicerContext) -> None:
        self.metrics.inc("vsgw_grpc_rejected_total", reason="malformed")
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the request is not a valid protobuf message of its type")

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or handler.request_streaming or handler.request_deserializer is None:
            return handler
        parse = handler.request_deserializer

        def deserialize(data: bytes) -> Any:
            try:
                return parse(data)
            except DecodeError:
                return MALFORMED

        kind = "unary_stream" if handler.response_streaming else "unary_unary"
        inner = getattr(handler, kind)
        refuse = self._refuse
        if inspect.isasyncgenfunction(inner):
            async def behaviour(request: Any, context: grpc.aio.ServicerContext) -> Any:  # type: ignore[misc]
                if request is MALFORMED:
                    await refuse(context)
                async for message in inner(request, context):
                    yield message
        else:
            async def behaviour(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if request is MALFORMED:
                    await refuse(context)
                return await inner(request, context)
        return handler._replace(request_deserializer=deserialize, **{kind: behaviour})
