# The indexer: `logpipe consume` (Kafka -> Elasticsearch, alert rules in-stream). Build from the root:
#   docker build -f deploy/docker/consumer.Dockerfile -t logpipe-consumer .
# It needs no privilege at all: a fixed non-root uid, read-only root filesystem in the Deployment.
# It installs the consumer's extra only (pyproject.toml; docs/ARCHITECTURE.md "One install per role"):
# no DuckDB, no watchdog.
# Build stage: the wheel, with the consumer's C extension (parsers/_access_encoder.c) compiled here so
# the runtime image carries no compiler; LOGPIPE_NATIVE=1 fails the build rather than ship without it.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
ENV LOGPIPE_NATIVE=1
WORKDIR /src
# README.md* : the project readme, when the tree has one (pyproject names it).
COPY pyproject.toml setup.py README.md* ./
COPY logpipe ./logpipe
COPY shipper ./shipper
COPY consumer ./consumer
COPY parsers ./parsers
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY --from=build /wheels /wheels
RUN pip install "$(ls /wheels/logpipe-*.whl)[consumer]" && rm -rf /wheels \
    && groupadd --system --gid 10001 logpipe \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin logpipe

WORKDIR /
EXPOSE 9465
USER 10001:10001
ENTRYPOINT ["logpipe"]
CMD ["consume", "--config", "/etc/logpipe/consumer.yaml"]
