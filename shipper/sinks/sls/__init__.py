"""The Alibaba Cloud Log Service (SLS) sink: ``config.py`` (settings), ``sink.py`` (the Sink),
``service.py`` (the only module that talks to ``aliyun-log-python-sdk``)."""
