"""Jaeger v2 (query only) built from the Go module proxy, reading the spans the consumer stores.

The binary is built once into the cache (``go get -tool`` in a scratch module, then ``go build``:
about 7 minutes on 2 cores, 116 MiB) and reused. It runs with a config of ours: its Elasticsearch
storage points at the consumer's indices (``<prefix>-jaeger-span-YYYY-MM-DD`` etc.), creates no
index templates (the consumer installs Jaeger's mappings, ``consumer/jaeger_templates.py``), and
no receiver takes spans (a ``nop`` pipeline: the consumer is the only writer). Against the
integ-test Elasticsearch it needs ``version: 8`` and ``disable_health_check: true``: that
distribution answers ``GET /`` and ``HEAD /`` with 405, which Jaeger would otherwise probe.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from logpipe.dev.services.errors import DevServiceError
from logpipe.dev.services.paths import DevPaths
from logpipe.dev.services.service import LocalService, Report, _silent

JAEGER_MODULE = "github.com/jaegertracing/jaeger"
JAEGER_VERSION = "v1.76.0"  # the module tag of the Jaeger v2.13.0 code
BUILD_TIMEOUT_S = 3600.0


def jaeger_config(es_url: str, index_prefix: str, http_port: int, grpc_port: int) -> str:
    """The YAML Jaeger runs with: query on ``127.0.0.1:http_port``, storage on our indices."""
    return f"""\
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [nop]
      exporters: [nop]
  telemetry:
    resource:
      service.name: jaeger-query
    metrics:
      level: none
    logs:
      level: warn

extensions:
  jaeger_query:
    storage:
      traces: logpipe_es
    http:
      endpoint: 127.0.0.1:{http_port}
    grpc:
      endpoint: 127.0.0.1:{grpc_port}

  jaeger_storage:
    backends:
      logpipe_es:
        elasticsearch:
          server_urls: [{es_url}]
          version: 8
          disable_health_check: true
          create_mappings: false
          use_aliases: false
          use_ilm: false
          indices:
            index_prefix: {index_prefix}
            spans: {{date_layout: "2006-01-02", rollover_frequency: day}}
            services: {{date_layout: "2006-01-02", rollover_frequency: day}}
            dependencies: {{date_layout: "2006-01-02", rollover_frequency: day}}

receivers:
  nop:

exporters:
  nop:
"""


class JaegerService(LocalService):
    """Jaeger's query service on 127.0.0.1 (HTTP API ``port``, gRPC ``grpc_port``) over ``es_url``."""

    name = "jaeger"
    start_timeout = 60.0
    requires = ("elasticsearch",)

    def __init__(
        self,
        paths: DevPaths,
        report: Report = _silent,
        port: int = 16686,
        grpc_port: int = 16685,
        es_url: str = "http://127.0.0.1:9200",
        index_prefix: str = "logpipe",
    ) -> None:
        super().__init__(paths, report)
        self.port = port
        self.grpc_port = grpc_port
        self.es_url = es_url
        self.index_prefix = index_prefix

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ports(self) -> list[int]:
        return [self.port, self.grpc_port]

    @property
    def binary(self) -> Path:
        """The built executable in the cache."""
        return self.paths.cache / "jaeger" / JAEGER_VERSION / "jaeger"

    def provision(self) -> None:
        if self.binary.exists():
            return
        build_jaeger(self.binary, self.report)

    def prepare(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        config = jaeger_config(self.es_url, self.index_prefix, self.port, self.grpc_port)
        (self.state_dir / "jaeger.yaml").write_text(config)

    def command(self) -> list[str]:
        if not self.binary.exists():
            raise DevServiceError(f"Jaeger is not built yet — run: logpipe dev up jaeger (builds {self.binary})")
        return [str(self.binary), f"--config={self.state_dir / 'jaeger.yaml'}"]


def build_jaeger(target: Path, report: Report = _silent) -> None:
    """Build ``cmd/jaeger`` at :data:`JAEGER_VERSION` into ``target`` (atomically: a partial build
    never looks like a binary)."""
    go = shutil.which("go")
    if go is None:
        raise DevServiceError("building Jaeger needs Go on PATH — install Go 1.24+ (apt-get install golang-go)")
    src = target.parent / "src"
    src.mkdir(parents=True, exist_ok=True)
    report(
        f"building Jaeger {JAEGER_VERSION} from the Go module proxy into {target} "
        "(first run only, ~7 minutes on 2 cores)..."
    )
    env = dict(os.environ, GOFLAGS="-mod=mod", CGO_ENABLED="0")
    partial = target.with_name(target.name + ".partial")
    steps = []
    if not (src / "go.mod").exists():
        steps.append([go, "mod", "init", "logpipe.local/jaegerbuild"])
    steps += [
        [go, "get", "-tool", f"{JAEGER_MODULE}/cmd/jaeger@{JAEGER_VERSION}"],
        [go, "build", "-o", str(partial), f"{JAEGER_MODULE}/cmd/jaeger"],
    ]
    for cmd in steps:
        try:
            done = subprocess.run(
                cmd, cwd=src, env=env, capture_output=True, text=True, check=False, timeout=BUILD_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            raise DevServiceError(f"{' '.join(cmd[1:3])} did not finish within {BUILD_TIMEOUT_S:.0f} s") from None
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise DevServiceError(f"building Jaeger failed at `go {' '.join(cmd[1:3])}`:\n{tail}")
    os.replace(partial, target)
