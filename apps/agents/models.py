"""The ``Agent`` model and its many-to-many link to tools."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text, text, true
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from apps.tools.models import Tool
from project.enums import AuthMode, ModelProvider
from project.models import Base
from project.orm.types import EnumString

agent_tools = Table(
    "agent_tools",
    Base.metadata,
    Column(
        "agent_id",
        UUID(as_uuid=True),
        ForeignKey("agents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "tool_id", UUID(as_uuid=True), ForeignKey("tools.id", ondelete="CASCADE"), primary_key=True
    ),
    Index("ix_agent_tools_tool_id", "tool_id"),
)


class Agent(Base):
    """A language-model agent: provider, model, prompt, and the tools it may call."""

    __tablename__ = "agents"
    __table_args__ = (
        Index(
            "uq_agents_name_live",
            "name",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    name: Mapped[str] = mapped_column(String(200))
    model_provider: Mapped[ModelProvider] = mapped_column(EnumString(ModelProvider))
    model_name: Mapped[str] = mapped_column(String(100))
    auth_mode: Mapped[AuthMode] = mapped_column(EnumString(AuthMode))
    system_prompt: Mapped[str] = mapped_column(Text, default="", server_default="")
    config: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())

    # lazy="raise": async code loads tools explicitly (selectinload), never by accident.
    tools: Mapped[list[Tool]] = relationship(
        secondary=agent_tools, lazy="raise", order_by=Tool.name
    )
