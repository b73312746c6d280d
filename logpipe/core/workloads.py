"""A pod's workload (its *Component*) from the pod's name alone, as Kubernetes generates names.

Shared by the shipper (the fallback when the API does not answer, ``shipper/pod_meta.py``) and the
consumer's SLS source (logs written by other agents name only their pod).
"""

from __future__ import annotations

import re

# Kubernetes' safe alphabet for generated names and pod-template-hash (no vowels, no 0/1/3), plus
# digits for old clusters (decimal hashes, 0-9 in suffixes) and CronJob's scheduled-minute Job suffix.
SAFE = "bcdfghjklmnpqrstvwxz2456789"
_DEPLOYMENT = re.compile(rf"^(?P<name>.+)-[{SAFE}0-9]{{6,10}}-[{SAFE}0-9]{{5}}$")
_STATEFULSET = re.compile(r"^(?P<name>.+)-(?:0|[1-9][0-9]{0,5})$")
_GENERATED = re.compile(rf"^(?P<name>.+)-[{SAFE}]{{5}}$")  # DaemonSet, Job, bare ReplicaSet pods


def derive_component(pod: str, node: str = "") -> str:
    """The workload name of a pod, from its name alone.

    - static pod ``kube-apiserver-<node>`` -> ``kube-apiserver`` (when ``node`` is given)
    - Deployment ``<name>-<rs-hash>-<5 chars>`` -> ``<name>`` (also CronJob ``<name>-<minutes>-<5>``)
    - StatefulSet ``<name>-<ordinal>`` -> ``<name>``
    - DaemonSet/Job ``<name>-<5 chars>`` -> ``<name>``
    - anything else -> the pod name

    The hash and the 5-character suffix only use Kubernetes' generated-name alphabet, so
    ``api-v2-backend-7d9f8b6c4-x2k9p`` -> ``api-v2-backend`` and ``redis-v2-0`` -> ``redis-v2``.
    Ambiguous by nature: a bare pod named ``web-2024`` becomes ``web``, ``proxy-http2`` becomes
    ``proxy``, and a name truncated by the 63-character limit keeps its hash; the API's ``app``
    label, when reachable, has the last word.
    """
    if node and pod.endswith(f"-{node}") and len(pod) > len(node) + 1:
        return pod[: -len(node) - 1]
    for rx in (_DEPLOYMENT, _STATEFULSET, _GENERATED):
        m = rx.match(pod)
        if m:
            return m.group("name")
    return pod
