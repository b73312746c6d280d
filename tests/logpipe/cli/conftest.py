"""The CLI tests reuse the search fixtures (log indices under the consumer's templates)."""

from tests.logpipe.tools.search.conftest import store

__all__ = ["store"]
