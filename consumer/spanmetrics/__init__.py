"""RED metrics of the indexed spans under the OpenTelemetry spanmetrics connector's names (docs/TRACES.md).

``store.py`` counts calls and duration per (service, span name, kind, status) within bounded memory,
``exposition.py`` writes them to ``/metrics`` as the connector + Prometheus exporter spell them,
``config.py`` holds the ``span_metrics`` section of consumer.yaml.
"""
