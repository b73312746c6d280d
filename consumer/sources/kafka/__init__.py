"""The Kafka source: a consumer-group member with manual commits (``source.py``)."""

from consumer.sources.kafka.source import KafkaSource

__all__ = ["KafkaSource"]
