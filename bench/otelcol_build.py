"""A small OpenTelemetry Collector for the shipper benchmark, built from the Go module proxy.

    python bench/otelcol_build.py          # prints the binary's path (built once, then cached)

Only what a platform team would run in place of ``logpipe ship`` on a node: the filelog receiver,
the kafka exporter and the file_storage extension (checkpoints). This module writes our own
``main.go`` and ``go.mod`` (what the Collector's builder would generate for these three components)
into ``<logpipe cache>/otelcol-bench/<version>/src`` and runs ``go build``; the binary is cached next
to it (named by a hash of the sources), so a second run costs nothing.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

CONTRIB = "v0.165.1"  # receiver/filelogreceiver, exporter/kafkaexporter, extension/storage/filestorage
CORE = "v0.165.0"  # go.opentelemetry.io/collector/otelcol (the unstable core modules)
CORE_STABLE = "v1.71.0"  # component, confmap, receiver, exporter, extension (the stable core modules)

_CONTRIB = "github.com/open-telemetry/opentelemetry-collector-contrib"
_CORE = "go.opentelemetry.io/collector"

GO_MOD = f"""\
module logpipe.local/otelcol-bench

go 1.24

require (
\t{_CONTRIB}/exporter/kafkaexporter {CONTRIB}
\t{_CONTRIB}/extension/storage/filestorage {CONTRIB}
\t{_CONTRIB}/receiver/filelogreceiver {CONTRIB}
\t{_CORE}/component {CORE_STABLE}
\t{_CORE}/confmap {CORE_STABLE}
\t{_CORE}/confmap/provider/fileprovider {CORE_STABLE}
\t{_CORE}/exporter {CORE_STABLE}
\t{_CORE}/extension {CORE_STABLE}
\t{_CORE}/otelcol {CORE}
\t{_CORE}/receiver {CORE_STABLE}
\t{_CORE}/service {CORE}
)
"""

MAIN_GO = f"""\
// The shipper benchmark's peer: filelog receiver -> kafka exporter, file_storage checkpoints.
// Written by logpipe's bench/otelcol_build.py; the same shape as the Collector builder's output.
package main

import (
\t"log"

\t"{_CONTRIB}/exporter/kafkaexporter"
\t"{_CONTRIB}/extension/storage/filestorage"
\t"{_CONTRIB}/receiver/filelogreceiver"
\t"{_CORE}/component"
\t"{_CORE}/confmap"
\t"{_CORE}/confmap/provider/fileprovider"
\t"{_CORE}/exporter"
\t"{_CORE}/extension"
\t"{_CORE}/otelcol"
\t"{_CORE}/receiver"
\t"{_CORE}/service/telemetry/otelconftelemetry"
)

func components() (otelcol.Factories, error) {{
\tvar err error
\tf := otelcol.Factories{{}}
\tif f.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](filelogreceiver.NewFactory()); err != nil {{
\t\treturn f, err
\t}}
\tif f.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](kafkaexporter.NewFactory()); err != nil {{
\t\treturn f, err
\t}}
\tif f.Extensions, err = otelcol.MakeFactoryMap[extension.Factory](filestorage.NewFactory()); err != nil {{
\t\treturn f, err
\t}}
\tf.Telemetry = otelconftelemetry.NewFactory()
\treturn f, nil
}}

func main() {{
\tset := otelcol.CollectorSettings{{
\t\tBuildInfo: component.BuildInfo{{Command: "otelcol-bench", Description: "logpipe bench peer", Version: "{CORE}"}},
\t\tFactories: components,
\t\tConfigProviderSettings: otelcol.ConfigProviderSettings{{
\t\t\tResolverSettings: confmap.ResolverSettings{{
\t\t\t\tDefaultScheme:     "file",
\t\t\t\tProviderFactories: []confmap.ProviderFactory{{fileprovider.NewFactory()}},
\t\t\t}},
\t\t}},
\t}}
\tif err := otelcol.NewCommand(set).Execute(); err != nil {{
\t\tlog.Fatal(err)
\t}}
}}
"""


def cache_dir() -> Path:
    """``<logpipe cache>/otelcol-bench/<contrib version>`` (``LOGPIPE_CACHE_DIR`` overrides the cache)."""
    env = os.environ.get("LOGPIPE_CACHE_DIR")
    if env:
        base = Path(env)
    elif os.geteuid() == 0:
        base = Path("/var/cache/logpipe")
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "logpipe"
    return base / "otelcol-bench" / CONTRIB


def build(quiet: bool = False) -> Path:
    """The collector binary: built on first use (a few minutes: the modules come from the proxy)."""
    root = cache_dir()
    digest = hashlib.sha256((GO_MOD + MAIN_GO).encode()).hexdigest()[:12]  # a changed generator builds anew
    binary = root / f"otelcol-bench-{digest}"
    if binary.exists():
        return binary
    src = root / "src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "go.mod").write_text(GO_MOD)
    (src / "main.go").write_text(MAIN_GO)
    env = {**os.environ, "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    out = subprocess.DEVNULL if quiet else None
    if not quiet:
        print(f"building the OpenTelemetry Collector {CONTRIB} in {src} (once; cached)", file=sys.stderr)
    subprocess.run(["go", "mod", "tidy"], cwd=src, env=env, check=True, stdout=out)
    tmp = root / f"otelcol-bench-{digest}.tmp"
    subprocess.run(["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(tmp), "."], cwd=src, env=env,
                   check=True, stdout=out)
    tmp.replace(binary)
    return binary


if __name__ == "__main__":
    print(build())
