"""Type stub of the C extension ``parsers/_access_encoder.c`` (see ``parsers/access_encoder.py``)."""

from collections.abc import Callable, Sequence
from typing import Any

class Encoder:
    def __init__(
        self,
        plan_fn: Callable[[tuple[str, ...]], Any],
        prefix: str,
        max_future_s: float | None,
        max_past_s: float | None,
        max_keys: int,
        max_value_chars: int,
    ) -> None: ...
    def encode(
        self, value: bytes, headers: Sequence[tuple[str, bytes]] | None, ingested: str
    ) -> tuple[bytes, str, str] | None: ...

def blake2b16_hex(data: bytes) -> str:
    """``hashlib.blake2b(data, digest_size=16).hexdigest()`` computed by the extension's own BLAKE2b (for tests)."""
