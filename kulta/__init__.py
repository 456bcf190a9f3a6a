"""kulta: progressive delivery for Kubernetes, one durable Temporal workflow per rollout revision.

This package holds the processes' entry points (worker, CLI), their configuration and the
Temporal connection; the logic lives in `workflows`, `activities` and `watcher`.
"""

__version__ = "0.1.0"
