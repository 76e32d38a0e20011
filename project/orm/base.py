"""The declarative ``Base`` of every model, with the constraint naming convention.

Every model has, from the mixins (``project.orm.mixins``), a UUID key generated
client-side with ``insert_sentinel`` (so the ORM batches INSERTs) and a server default for
raw SQL, server-set timestamps fetched eagerly (no lazy load after a flush), and soft
delete.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from project.orm.mixins import SoftDeleteMixin, TimestampMixin, UUIDPrimaryKeyMixin

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(UUIDPrimaryKeyMixin, TimestampMixin, SoftDeleteMixin, DeclarativeBase):
    """The declarative base of every model in every installed app."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.__dict__.get('id')}>"
