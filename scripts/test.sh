#!/usr/bin/env bash
# The whole test suite, from a fresh machine (Debian 12, Python 3.11, Java 17, Maven, root):
# installs what is missing, runs ruff, mypy and pytest (unit + integration against real Kafka,
# Elasticsearch and Alertmanager on 127.0.0.1), prints a summary, and stops the services it started.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
SERVICES=(kafka elasticsearch alertmanager jaeger)
declare -a SUMMARY=()
FAILED=0
STARTED_HERE=()

step() {  # step NAME COMMAND...: run, time and record one step; later steps run even if it fails
    local name=$1 began rc
    shift
    printf '\n==> %s\n' "$name"
    began=$(date +%s)
    set +e
    "$@"
    rc=$?
    set -e
    local took=$(( $(date +%s) - began ))
    if [[ $rc -eq 0 ]]; then
        SUMMARY+=("ok      ${name} (${took}s)")
    else
        SUMMARY+=("FAILED  ${name} (exit ${rc}, ${took}s)")
        FAILED=1
    fi
    return 0
}

running_services() {  # the services logpipe reports running right now (ours or already there)
    logpipe dev status 2>/dev/null | awk '$2 == "running" || $2 == "external" { print $1 }' || true
}

stop_what_we_started() {
    if [[ ${SECURE_KAFKA_BEFORE:-running} != running ]] && [[ $(secure_kafka_state) == running ]]; then
        echo "==> stopping the secured Kafka broker the tests started"
        "$PYTHON" -m logpipe.dev.services.kafka_secure down || true
    fi
    if [[ ${#STARTED_HERE[@]} -gt 0 ]]; then
        printf '\n==> stopping the services this run started: %s\n' "${STARTED_HERE[*]}"
        logpipe dev down "${STARTED_HERE[@]}" || true
    fi
}
trap stop_what_we_started EXIT
trap 'exit 143' TERM  # so the EXIT trap also runs when CI cancels the job
trap 'exit 130' INT

install_system_packages() {
    local missing=()
    command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null \
        || missing+=(prometheus-alertmanager)
    # nginx: the real producer of access logs in tests/test_real_nginx.py (started by the test itself).
    command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
    if [[ ${#missing[@]} -eq 0 ]]; then
        echo "prometheus-alertmanager and nginx are installed"
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    local policy=/usr/sbin/policy-rc.d added=0
    if [[ ! -e $policy ]]; then  # the packages must not start system services (nginx on port 80)
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added=1
    fi
    apt-get update -q && apt-get install -y -q "${missing[@]}"
    local rc=$?
    [[ $added -eq 1 ]] && rm -f "$policy"
    return $rc
}

install_python_package() {
    "$PYTHON" -m pip install --quiet --disable-pip-version-check -e '.[dev]'
}

start_services() {
    # Started up front so the three start side by side; the pytest fixtures then reuse them.
    local before
    before=$(running_services)
    logpipe dev up || return $?
    local name
    for name in "${SERVICES[@]}"; do
        grep -qx "$name" <<<"$before" || STARTED_HERE+=("$name")
    done
}

secure_kafka_state() {  # the SASL_SSL/mTLS broker the secure_kafka fixture starts (docs/SECURITY.md)
    "$PYTHON" -m logpipe.dev.services.kafka_secure status 2>/dev/null || true
}

run_pytest() {
    SECURE_KAFKA_BEFORE=$(secure_kafka_state)
    local rc=0
    "$PYTHON" -m pytest -ra --durations=15 "$@" || rc=$?
    if [[ $rc -eq 5 ]]; then
        echo "pytest collected no tests: the suite is broken (wrong directory or an import error?)" >&2
    fi
    return $rc
}

began_all=$(date +%s)
step "system packages (prometheus-alertmanager, nginx)" install_system_packages
step "pip install -e '.[dev]'" install_python_package
step "kustomize (renders deploy/k8s in tests)" bash scripts/install-kustomize.sh
step "ruff check ." "$PYTHON" -m ruff check .
step "mypy" "$PYTHON" -m mypy
step "logpipe dev up (Kafka, Elasticsearch, Alertmanager, Jaeger; the first run builds Jaeger, ~7 min)" start_services
step "pytest (unit + integration)" run_pytest "$@"

printf '\n==> summary (%ss in all)\n' "$(( $(date +%s) - began_all ))"
printf '  %s\n' "${SUMMARY[@]}"
if [[ $FAILED -ne 0 ]]; then
    echo "TESTS FAILED"
    exit 1
fi
echo "ALL PASSED"
