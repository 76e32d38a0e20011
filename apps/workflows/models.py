"""The ``Workflow`` graph: ``Node`` and ``Edge``.

Edges reference their nodes through composite foreign keys ``(workflow_id, node_id)``, so
the database itself guarantees that both ends of an edge belong to the edge's workflow.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    CheckConstraint,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    UniqueConstraint,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, joinedload, mapped_column, relationship, selectinload

from apps.agents.models import Agent
from apps.tools.models import Tool
from project.enums import NodeType, TriggerType
from project.models import Base, VersionedMixin
from project.orm.types import EnumString

if TYPE_CHECKING:
    from sqlalchemy import Select


class Workflow(VersionedMixin, Base):
    """A trading workflow: a trigger and a graph of nodes joined by edges.

    Versioned: two editors saving the same workflow cannot overwrite each other silently.
    """

    __tablename__ = "workflows"
    # Soft-deleting a workflow hides its nodes and edges too (restore brings them back).
    __soft_delete_cascade__ = ("nodes", "edges")
    __table_args__ = (Index("ix_workflows_trigger_type", "trigger_type"),)

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    trigger_type: Mapped[TriggerType] = mapped_column(EnumString(TriggerType))
    trigger_config: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())

    nodes: Mapped[list[Node]] = relationship(
        back_populates="workflow",
        lazy="raise",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Node.created_at, Node.id",
    )
    edges: Mapped[list[Edge]] = relationship(
        back_populates="workflow",
        lazy="raise",
        cascade="all, delete-orphan",
        passive_deletes=True,
        overlaps="source_node,target_node",
        order_by="Edge.created_at, Edge.id",
    )

    @classmethod
    def with_graph(cls) -> Select[Workflow]:
        """Return a select that loads workflows with nodes (their tools and agents joined)
        and edges: three queries whatever the graph's size."""
        return select(cls).options(
            selectinload(cls.nodes).options(joinedload(Node.tool), joinedload(Node.agent)),
            selectinload(cls.edges),
        )


class Node(Base):
    """One step of a workflow: a trigger, a tool or agent call, a condition, ..."""

    __tablename__ = "nodes"
    __table_args__ = (
        # The target of the edges' composite foreign keys.
        UniqueConstraint("workflow_id", "id", name="uq_nodes_workflow_id_id"),
        CheckConstraint("(node_type = 'tool') = (tool_id IS NOT NULL)", name="tool_iff_tool_node"),
        CheckConstraint(
            "(node_type = 'agent') = (agent_id IS NOT NULL)", name="agent_iff_agent_node"
        ),
        Index("ix_nodes_workflow_id", "workflow_id"),
        Index("ix_nodes_tool_id", "tool_id"),
        Index("ix_nodes_agent_id", "agent_id"),
    )

    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    node_type: Mapped[NodeType] = mapped_column(EnumString(NodeType))
    tool_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tools.id", ondelete="RESTRICT"), default=None
    )
    agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="RESTRICT"), default=None
    )
    config: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    # Where the editor draws the node.
    position_x: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    position_y: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")

    workflow: Mapped[Workflow] = relationship(back_populates="nodes", lazy="raise")
    tool: Mapped[Tool | None] = relationship(lazy="raise")
    agent: Mapped[Agent | None] = relationship(lazy="raise")


class Edge(Base):
    """A directed link from one node to another, optionally guarded by a condition."""

    __tablename__ = "edges"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workflow_id", "source_node_id"],
            ["nodes.workflow_id", "nodes.id"],
            ondelete="CASCADE",
            name="fk_edges_source_node_in_workflow",
        ),
        ForeignKeyConstraint(
            ["workflow_id", "target_node_id"],
            ["nodes.workflow_id", "nodes.id"],
            ondelete="CASCADE",
            name="fk_edges_target_node_in_workflow",
        ),
        UniqueConstraint("source_node_id", "target_node_id", name="uq_edges_source_target"),
        CheckConstraint("source_node_id <> target_node_id", name="no_self_loop"),
        Index("ix_edges_workflow_id", "workflow_id"),
        Index("ix_edges_target_node_id", "target_node_id"),
    )

    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    source_node_id: Mapped[uuid.UUID] = mapped_column()
    target_node_id: Mapped[uuid.UUID] = mapped_column()
    # none_as_null: no condition is SQL NULL, not the JSON value null.
    condition: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True), default=None)

    workflow: Mapped[Workflow] = relationship(
        back_populates="edges", lazy="raise", overlaps="source_node,target_node"
    )
    source_node: Mapped[Node] = relationship(
        foreign_keys=[source_node_id],
        primaryjoin="Edge.source_node_id == Node.id",
        lazy="raise",
    )
    target_node: Mapped[Node] = relationship(
        foreign_keys=[target_node_id],
        primaryjoin="Edge.target_node_id == Node.id",
        lazy="raise",
    )
