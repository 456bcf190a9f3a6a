"""Errors raised by adapters, drawn as a tree; mapped to retry behaviour in one place.

KultaError
├── BadInput             non-retryable: the spec or the cluster objects can never work as is
│   ├── NotFound         a named object does not exist
│   ├── Invalid          the API server rejected the object (422)
│   └── Forbidden        RBAC denies the request (403)
└── Transient            retried by Temporal's retry policy
    ├── Conflict         a resourceVersion precondition failed (409)
    ├── Gone             a watch's resourceVersion is too old (410)
    ├── Unauthorized     the token was refused (401): re-read or refreshed, then retried,
    │                    loudly (Degraded) while it lasts; never a silent end
    └── Unavailable      connection errors, timeouts, 429 and 5xx
"""

from __future__ import annotations


class KultaError(Exception):
    """Base of every error kulta's adapters raise."""

    non_retryable = False


class BadInput(KultaError):
    non_retryable = True


class NotFound(BadInput):
    pass


class Invalid(BadInput):
    pass


class Forbidden(BadInput):
    pass


class Transient(KultaError):
    pass


class Conflict(Transient):
    pass


class AlreadyExists(Conflict):
    pass


class Gone(Transient):
    pass


class Unauthorized(Transient):
    pass


class Unavailable(Transient):
    pass


class ConfigChanged(Transient):
    """A tracked ConfigMap or Secret changed (or went) since the watcher made the revision that
    copies it: the copy is not made with other data than its name says, and the watcher starts
    the revision that carries the change."""
