"""Agents: language-model agents with the tools they may use."""
