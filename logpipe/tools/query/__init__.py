"""`logpipe query`: filter, group and aggregate JSON access-log files, with DuckDB as the engine.

Python plans the query (field names through :mod:`logpipe.core.fields`, the ``--where`` language
through :mod:`logpipe.core.expr`) and DuckDB reads and aggregates the lines; Python never touches a
line on the fast path. See :mod:`logpipe.tools.query.engine` for how malformed lines are counted.
"""
