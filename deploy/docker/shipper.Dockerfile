# The node agent: `logpipe ship`. Build from the repository root:
#   docker build -f deploy/docker/shipper.Dockerfile -t logpipe-shipper .
#
# It runs as uid 0 on purpose, but with every capability dropped except DAC_READ_SEARCH (set in the
# DaemonSet's securityContext, deploy/k8s/base/shipper-daemonset.yaml): files in EmptyDir volumes
# belong to whatever uid each application runs as (often 0600), and /var/log/pods files are
# root-owned 0640. DAC_READ_SEARCH lets it read and traverse them, and nothing else: it cannot write
# to them (no DAC_OVERRIDE), chown, or open devices (refused in shipper/safe_open.py anyway). A non-root
# uid cannot hold that capability without ambient capabilities, which Kubernetes does not grant.
#
# It installs the shipper's extra only (pyproject.toml; docs/ARCHITECTURE.md "One install per role"):
# no DuckDB, no Elasticsearch client, no C extension. An SLS shipper adds its SDK:
#   docker build --build-arg EXTRAS=shipper,sls -f deploy/docker/shipper.Dockerfile .
# Build stage: a pure-Python wheel. LOGPIPE_NATIVE=0 skips the consumer's C extension (setup.py), so
# no compiler is needed and the image carries none of it.
FROM python:3.11-slim AS build
ENV LOGPIPE_NATIVE=0
WORKDIR /src
# README.md* : the project readme, when the tree has one (pyproject names it).
COPY pyproject.toml setup.py README.md* ./
COPY logpipe ./logpipe
COPY shipper ./shipper
COPY consumer ./consumer
COPY parsers ./parsers
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ARG EXTRAS=shipper

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY --from=build /wheels /wheels
RUN pip install "$(ls /wheels/logpipe-*.whl)[${EXTRAS}]" && rm -rf /wheels

WORKDIR /
EXPOSE 9102
USER 0
ENTRYPOINT ["logpipe"]
CMD ["ship", "--config", "/etc/logpipe/shipper.yaml"]
