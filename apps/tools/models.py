"""The ``Tool`` model."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Index, String, Text, text, true
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from project.enums import ToolType
from project.models import Base
from project.orm.types import EnumString


class Tool(Base):
    """Something a workflow node or an agent can call: a data source, an indicator, ..."""

    __tablename__ = "tools"
    __table_args__ = (
        # A name is unique among live tools: soft-deleting a tool frees its name.
        Index(
            "uq_tools_name_live",
            "name",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("ix_tools_tool_type", "tool_type"),
    )

    name: Mapped[str] = mapped_column(String(200))
    tool_type: Mapped[ToolType] = mapped_column(EnumString(ToolType))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    config: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
