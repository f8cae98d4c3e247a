"""Stands in for keras in tests that must run without it."""

raise ImportError("keras is blocked in this test")
