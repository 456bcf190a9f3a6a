"""Workflow identity: one id per Rollout revision (see `activities.naming` for the parts)."""

from activities.naming import workflow_id

__all__ = ["workflow_id"]
