"""Tests of the workflows app."""
