"""Searching the indexed logs in Elasticsearch: ``logpipe search`` and ``logpipe trace``.

Pure parts (query building, time ranges, rendering, span trees) are separate from the one module
that talks to Elasticsearch (:mod:`logpipe.tools.search.client`).
"""
