"""Shared test code: the oracle, hypothesis strategies, CheckRequest builders, policies.
Importable from every tier (pytest puts tests/ on sys.path: pyproject's pythonpath)."""
