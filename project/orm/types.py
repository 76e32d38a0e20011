"""Column types and key generation shared by the models."""

from __future__ import annotations

import os
import random
import time
import uuid
from enum import StrEnum
from typing import Any, TypeVar, cast

from sqlalchemy import String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

ENUM_LENGTH = 50
_MASK_12 = (1 << 12) - 1
_MASK_48 = (1 << 48) - 1
_MASK_62 = (1 << 62) - 1
E = TypeVar("E", bound=StrEnum)


_last = [0, 0]  # the last millisecond used and its counter
# Key bits need uniqueness, not secrecy: a generator seeded from the OS (again in each
# forked child) is 10x cheaper than os.urandom per key, which matters for bulk seeding.
_bits = random.Random(os.urandom(32))  # noqa: S311
os.register_at_fork(after_in_child=lambda: _bits.seed(os.urandom(32)))


def uuid7() -> uuid.UUID:
    """Return a time-ordered UUID (RFC 9562 version 7), so new keys append to the index.

    Within one millisecond the 12-bit ``rand_a`` field counts up from a random start
    (RFC 9562's "fixed-length dedicated counter"), so keys made in one process are
    strictly increasing: ordering by ``id`` follows creation order.
    """
    millis = time.time_ns() // 1_000_000 & _MASK_48
    last, counter = _last
    if millis <= last:
        millis, counter = last, counter + 1
        if counter > _MASK_12:  # the counter ran out: borrow the next millisecond
            millis, counter = last + 1, 0
    else:
        counter = _bits.getrandbits(10)  # start low, to leave room to count up
    _last[:] = [millis, counter]
    rand_b = _bits.getrandbits(62)
    return uuid.UUID(int=millis << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b)


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
