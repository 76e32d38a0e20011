"""Executions: the recorded runs of workflows and of their nodes."""
