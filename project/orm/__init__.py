"""The ORM layer: the declarative base and mixins, column types, repositories."""
