"""The Kafka sink: ``config.py`` (what operators set) and ``sink.py`` (the only module that talks to aiokafka)."""

from shipper.sinks.kafka.config import KafkaSinkConfig

__all__ = ["KafkaSinkConfig"]
