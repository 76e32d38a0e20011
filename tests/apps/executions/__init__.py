"""Tests of the executions app."""
