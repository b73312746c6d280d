"""The SLS source: a consumer-group member of SLS logstores (``source: {type: sls}``)."""
