"""Schemas and query parameters every list endpoint shares."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

T = TypeVar("T")

#: ``?limit=N``: how many items a page holds.
Limit = Annotated[int, Query(ge=1, le=200, description="How many items per page.")]
#: ``?after=CURSOR``: the ``next`` of the previous page.
After = Annotated[
    str | None, Query(max_length=64, description="The `next` cursor of the previous page.")
]


class Page(BaseModel, Generic[T]):
    """One page of a list: keyset-paginated, oldest first unless the route says otherwise."""

    items: list[T]
    next: str | None = Field(description="The cursor of the next page; null on the last page.")


class Output(BaseModel):
    """A response schema read from a model's attributes."""

    model_config = ConfigDict(from_attributes=True)


class Patch(BaseModel):
    """A partial update: only the fields sent change, and none of them may be null."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _no_nulls(self) -> Patch:
        nulls = sorted(name for name in self.model_fields_set if getattr(self, name) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null; leave the field out instead")
        return self

    def changes(self) -> dict[str, object]:
        """Return the fields the client sent."""
        return self.model_dump(exclude_unset=True)
