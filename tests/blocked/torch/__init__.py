"""Stands in for torch in tests that must run without it."""

raise ImportError("torch is blocked in this test")
