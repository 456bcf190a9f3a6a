"""Everything that touches the world: Kubernetes, Prometheus, CDEvent sinks, Temporal itself.

Each activity is idempotent (absolute values, preconditions) so Temporal may retry it freely.
This package never imports `workflows`: workflows depend on activities, not the reverse.
"""
