"""Real tracers writing span files as a pod would: the OpenTelemetry Python SDK and py_zipkin.

The demo's spans and the trace tests' come from these (the ``demo`` extra installs them), so what
the pipeline reads is what an instrumented service writes, not a hand-made shape.

* OpenTelemetry: the SDK's own OTLP protobuf encoder (``opentelemetry-exporter-otlp-proto-common``:
  ``encode_spans`` -> an ``ExportTraceServiceRequest``), written as protobuf's JSON mapping
  (``google.protobuf.json_format``: base64 ids, enum names, 64-bit integers as strings), one request
  per line — what an OTLP/JSON file exporter writes.
* Zipkin: py_zipkin's spans encoded as Zipkin v2 JSON (``Encoding.V2_JSON``), one reported list per
  line — the body a Zipkin reporter POSTs to ``/api/v2/spans``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from google.protobuf.json_format import MessageToJson
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from py_zipkin.encoding import Encoding
from py_zipkin.transport import BaseTransportHandler


class OtlpJsonFileExporter(SpanExporter):
    """Appends each export as one OTLP/JSON ``ExportTraceServiceRequest`` line to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        line = MessageToJson(encode_spans(spans), indent=None)  # type: ignore[call-arg]
        with self._lock, self.path.open("a") as fh:
            fh.write(line.replace("\n", "") + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def otel_tracer_provider(path: Path, service: str, batch: SpanExporter | None = None) -> TracerProvider:
    """A provider of the SDK for ``service`` whose spans go to ``path``, one line per finished span
    (``SimpleSpanProcessor``); use :func:`otel_batch_provider` for many spans per line."""
    provider = TracerProvider(resource=Resource.create({"service.name": service, "k8s.namespace.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(batch or OtlpJsonFileExporter(path)))
    return provider


class BufferedExporter(SpanExporter):
    """Holds finished spans; :meth:`flush_line` writes them all as ONE request line."""

    def __init__(self, path: Path) -> None:
        self.file = OtlpJsonFileExporter(path)
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def flush_line(self) -> None:
        if self.spans:
            self.file.export(self.spans)
            self.spans = []

    def shutdown(self) -> None:
        return None


class ZipkinFileTransport(BaseTransportHandler):  # type: ignore[misc]
    """py_zipkin's transport: each reported batch (a JSON list of v2 spans) as one line of ``path``."""

    encoding = Encoding.V2_JSON

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def get_max_payload_bytes(self) -> int | None:
        return None

    def send(self, payload: bytes | str) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        with self.path.open("ab") as fh:
            fh.write(data.replace(b"\n", b"") + b"\n")
