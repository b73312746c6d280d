#!/usr/bin/env bash
# kustomize, to render deploy/k8s overlays in tests: built from the Go module proxy (v5.7.1 is the
# newest that builds with this machine's Go 1.26), into ~/go/bin. Skipped when already there.
set -euo pipefail
if command -v kustomize >/dev/null || [[ -x "$HOME/go/bin/kustomize" ]]; then
    echo "kustomize is installed"
    exit 0
fi
GOFLAGS=-mod=mod go install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1
