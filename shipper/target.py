"""A file that discovery decided to ship: where it is and what every one of its lines is tagged with.

Discovery (``shipper/discovery.py``) produces targets; the tailer (``shipper/tailer.py``) reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

from shipper.multiline import MultilineSpec


@dataclass(frozen=True, slots=True)
class PodInfo:
    """What is known of the pod that owns a file."""

    namespace: str
    pod: str
    pod_uid: str
    component: str
    container: str = ""


@dataclass(frozen=True, slots=True)
class FileTarget:
    """A log file under one of the configured roots.

    ``relpath`` is relative to ``root`` and never contains ``..``; open it only through
    ``shipper/safe_open.py`` (beneath the root, no symlinks), never by ``abspath``.
    """

    root: str
    relpath: str
    log_type: str  # access | app | stdout | trace
    topic: str
    pod: PodInfo
    node: str
    multiline: MultilineSpec | None = None  # how lines join into events (shipper/multiline.py); None: never
    access_format: str = ""  # the rule's chosen access format (lp.format); "": detected per line

    @property
    def abspath(self) -> str:
        return f"{self.root.rstrip('/')}/{self.relpath}"
