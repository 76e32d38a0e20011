"""Tests of the agents app."""
