"""Tests of the domain apps against a real PostgreSQL."""
