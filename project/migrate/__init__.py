"""Migrations on Alembic: the commands, the lock, safety, lint and autogenerate hooks."""
