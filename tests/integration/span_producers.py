"""The real tracers of the trace tests live with the demo's (``logpipe/dev/demo/tracers.py``)."""

from logpipe.dev.demo.tracers import (
    BufferedExporter,
    OtlpJsonFileExporter,
    ZipkinFileTransport,
    otel_tracer_provider,
)

__all__ = ["BufferedExporter", "OtlpJsonFileExporter", "ZipkinFileTransport", "otel_tracer_provider"]
