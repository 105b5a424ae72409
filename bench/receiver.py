"""A tiny OTLP/HTTP endpoint: ``ok`` answers every POST with 200 (empty protobuf body);
``stall`` accepts connections and never answers; ``count`` answers as ``ok`` and keeps the
bodies of the trace exports, which ``GET /counts`` then decodes and counts (the spans, the
database client spans, the streamed requests' server spans). ``python -m bench.receiver
ok|stall|count`` prints ``{"port": N}`` and serves until killed.

``count`` decodes nothing while the load runs: the receiver shares the machine with the
service it receives from, so its work must not grow with what it counts."""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
from collections.abc import Awaitable, Callable, Sequence

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

_OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
STREAM_ROUTE = "/agent/message/stream"

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def count_spans(bodies: Sequence[bytes]) -> dict[str, int]:
    """``spans``: every span; ``db_spans``: the ``CLIENT`` spans with a ``db.*`` attribute
    (the database client instrumentation's); ``streams``: the ``SERVER`` spans of the
    streaming route, one per streamed request."""
    counts = {"spans": 0, "db_spans": 0, "streams": 0}
    for body in bodies:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    counts["spans"] += 1
                    if span.kind == Span.SPAN_KIND_CLIENT and any(
                        attribute.key.startswith("db.") for attribute in span.attributes
                    ):
                        counts["db_spans"] += 1
                    elif span.kind == Span.SPAN_KIND_SERVER and span.name.endswith(STREAM_ROUTE):
                        counts["streams"] += 1
    return counts


def answering(kept: list[bytes] | None) -> Handler:
    """The ``ok`` handler; with ``kept``, the ``count`` one (trace bodies appended to it)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, path = head.split(b" ", 2)[:2]
                headers: dict[bytes, bytes] = {}
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
                if method == b"GET" and path == b"/counts" and kept is not None:
                    doc = json.dumps(count_spans(kept)).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                        b"content-length: %d\r\n\r\n" % len(doc) + doc
                    )
                else:
                    if kept is not None and path == b"/v1/traces":
                        gzipped = headers.get(b"content-encoding") == b"gzip"
                        kept.append(gzip.decompress(body) if gzipped else body)
                    writer.write(_OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            writer.close()

    return answer


async def _stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await reader.read(65536):
        pass


async def serve(mode: str) -> None:
    handler = _stall if mode == "stall" else answering([] if mode == "count" else None)
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port}), flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
