"""Policies the tests share."""

from devstack.policies import DEMO_POLICY

__all__ = ["DEMO_POLICY"]
