"""Names that running histories and clusters depend on: revisions, workflow ids, labels.

Changing anything here changes which workflow and ReplicaSet a Rollout maps to: treat it as an API.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

TASK_QUEUE = "kulta"
WORKFLOW_NAME = "Rollout"
ROLLOUT_API_VERSION = "kulta.io/v1alpha1"

# Custom search attributes (Keyword), registered on the Temporal namespace at worker start.
SA_ROLLOUT = "KultaRollout"
SA_NAMESPACE = "KultaNamespace"
SA_STRATEGY = "KultaStrategy"
SA_PHASE = "KultaPhase"
SEARCH_ATTRIBUTES = (SA_ROLLOUT, SA_NAMESPACE, SA_STRATEGY, SA_PHASE)

LABEL_TEMPLATE_HASH = "pod-template-hash"
LABEL_MANAGED = "rollouts.kulta.io/managed"
LABEL_ROLLOUT = "rollouts.kulta.io/rollout"

# Alphabet without vowels, so a hash never spells a word (the same idea as Kubernetes' own).
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def revision_of(template: dict[str, Any]) -> str:
    """A stable 10-character hash of a pod template, independent of key order."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    number = int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "big")
    chars = []
    for _ in range(10):
        number, rest = divmod(number, len(_SAFE))
        chars.append(_SAFE[rest])
    return "".join(chars)


WORKFLOW_ID_PREFIX = "rollout/"


def workflow_id(namespace: str, name: str, uid: str, revision: str) -> str:
    """`rollout/<ns>/<name>/<revision>.<uid prefix>`; the uid keeps a re-created Rollout apart."""
    return f"{WORKFLOW_ID_PREFIX}{namespace}/{name}/{revision}.{uid[:8]}"


def replicaset_name(rollout: str, revision: str) -> str:
    return f"{rollout}-{revision}"
