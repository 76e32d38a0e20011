"""The models' shared base, as the contract names it: ``Base`` and the mixins.

They live in ``project.orm`` (``base`` and ``mixins``); this module is the import the apps
use.
"""

from project.orm.base import NAMING_CONVENTION, Base
from project.orm.mixins import (
    INCLUDE_DELETED,
    SoftDeleteMixin,
    TimestampMixin,
    UUIDPrimaryKeyMixin,
    VersionedMixin,
)

__all__ = [
    "INCLUDE_DELETED",
    "NAMING_CONVENTION",
    "Base",
    "SoftDeleteMixin",
    "TimestampMixin",
    "UUIDPrimaryKeyMixin",
    "VersionedMixin",
]
