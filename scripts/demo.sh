#!/usr/bin/env bash
# The main job on a fresh machine: install logpipe, start the local services (downloaded once,
# cached under ~/.cache/logpipe), and run the whole pipeline on generated pod logs:
# pod logs -> shipper -> Kafka -> consumer -> Elasticsearch -> search results and a fired alert.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# The three roles the demo runs (docs/ARCHITECTURE.md, "One install per role") and its real tracers
# (the demo extra); scripts/test.sh installs .[dev].
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e '.[shipper,consumer,tools,demo]'
exec logpipe demo "$@"
