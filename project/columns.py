"""Column types and key generation shared by the models."""

from __future__ import annotations

import os
import time
import uuid
from enum import StrEnum
from typing import Any, TypeVar, cast

from sqlalchemy import String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

ENUM_LENGTH = 50
_MASK_48 = (1 << 48) - 1
_MASK_62 = (1 << 62) - 1
E = TypeVar("E", bound=StrEnum)


def uuid7() -> uuid.UUID:
    """Return a time-ordered UUID (RFC 9562 version 7), so new keys append to the index."""
    millis = time.time_ns() // 1_000_000 & _MASK_48
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a, rand_b = rand >> 68, rand & _MASK_62  # 12 and 62 random bits
    return uuid.UUID(int=millis << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b)


class EnumString(TypeDecorator[E]):
    """Store a str enum as VARCHAR(50) and load it back as the enum member.

    A value outside the enum raises ValueError when bound, before it reaches the database;
    no PostgreSQL ENUM type is created, so adding a member needs no DDL.
    """

    impl = String(ENUM_LENGTH)
    cache_ok = True

    def __init__(self, enum_class: type[E], **kw: Any) -> None:
        super().__init__(ENUM_LENGTH, **kw)
        self.enum_class = enum_class

    def coerce(self, value: object) -> E:
        """Return ``value`` as a member of the enum, or raise ValueError naming the enum."""
        try:
            return self.enum_class(cast(str, value))
        except ValueError:
            allowed = ", ".join(member.value for member in self.enum_class)
            raise ValueError(
                f"{value!r} is not a valid {self.enum_class.__name__}; expected one of {allowed}"
            ) from None

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return self.coerce(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        if value is None:
            return None
        return self.coerce(value)

    def __repr__(self) -> str:
        return f"EnumString({self.enum_class.__name__})"
