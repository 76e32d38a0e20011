"""Tests of the tools app."""
