"""The Kafka sink: ``config.py`` (what operators set), ``wire.py`` (topic, key, headers, value of a
line), ``sink.py`` (batches and their acks) and ``service.py`` (the only module that talks to the
Kafka client, confluent-kafka)."""

from shipper.sinks.kafka.config import KafkaSinkConfig

__all__ = ["KafkaSinkConfig"]
