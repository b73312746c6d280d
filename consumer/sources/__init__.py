"""Where records come from: one folder per source, each implementing ``consumer.ports.Source``."""
