# The indexer: `logpipe consume` (Kafka -> Elasticsearch, alert rules in-stream). Build from the root:
#   docker build -f deploy/docker/consumer.Dockerfile -t logpipe-consumer .
# It needs no privilege at all: a fixed non-root uid, read-only root filesystem in the Deployment.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md* ./
COPY logpipe ./logpipe
COPY shipper ./shipper
COPY consumer ./consumer
COPY parsers ./parsers
RUN pip install . && rm -rf /src \
    && groupadd --system --gid 10001 logpipe \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin logpipe

WORKDIR /
EXPOSE 9465
USER 10001:10001
ENTRYPOINT ["logpipe"]
CMD ["consume", "--config", "/etc/logpipe/consumer.yaml"]
