"""Workflows: graphs of trigger, tool, agent and condition nodes joined by edges."""
