"""Policies the tests share."""

from authz.testing.policies import DEMO_POLICY

__all__ = ["DEMO_POLICY"]
