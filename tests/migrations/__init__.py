"""Tests of the migration environment (migrations/env.py)."""
