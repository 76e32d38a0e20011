"""domain: tools, agents, workflows, executions

Revision ID: feddbcc5486d
Revises: 4c58b2deed18
Create Date: 2026-11-26 04:28:28.400265+00:00

Reviewed by hand: every constraint is named (the metadata's naming convention or an
explicit name); edges reference (workflow_id, node id) so both ends lie in the edge's
workflow; executions RESTRICT the deletion of what they recorded.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
revision: str = 'feddbcc5486d'
down_revision: str | Sequence[str] | None = '4c58b2deed18'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('agents',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('model_provider', sa.String(length=50), nullable=False),
    sa.Column('model_name', sa.String(length=100), nullable=False),
    sa.Column('auth_mode', sa.String(length=50), nullable=False),
    sa.Column('system_prompt', sa.Text(), server_default='', nullable=False),
    sa.Column('config', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agents'))
    )
    op.create_index('uq_agents_name_live', 'agents', ['name'], unique=True, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_table('tools',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('tool_type', sa.String(length=50), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('config', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tools'))
    )
    op.create_index('ix_tools_tool_type', 'tools', ['tool_type'], unique=False)
    op.create_index('uq_tools_name_live', 'tools', ['name'], unique=True, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_table('workflows',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('trigger_type', sa.String(length=50), nullable=False),
    sa.Column('trigger_config', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflows'))
    )
    op.create_index('ix_workflows_trigger_type', 'workflows', ['trigger_type'], unique=False)
    op.create_table('agent_tools',
    sa.Column('agent_id', sa.UUID(), nullable=False),
    sa.Column('tool_id', sa.UUID(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_agent_tools_agent_id_agents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tool_id'], ['tools.id'], name=op.f('fk_agent_tools_tool_id_tools'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('agent_id', 'tool_id', name=op.f('pk_agent_tools'))
    )
    op.create_index('ix_agent_tools_tool_id', 'agent_tools', ['tool_id'], unique=False)
    op.create_table('nodes',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('workflow_id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('node_type', sa.String(length=50), nullable=False),
    sa.Column('tool_id', sa.UUID(), nullable=True),
    sa.Column('agent_id', sa.UUID(), nullable=True),
    sa.Column('config', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('position_x', sa.Float(), server_default='0', nullable=False),
    sa.Column('position_y', sa.Float(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(node_type = 'agent') = (agent_id IS NOT NULL)", name=op.f('ck_nodes_agent_iff_agent_node')),
    sa.CheckConstraint("(node_type = 'tool') = (tool_id IS NOT NULL)", name=op.f('ck_nodes_tool_iff_tool_node')),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_nodes_agent_id_agents'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['tool_id'], ['tools.id'], name=op.f('fk_nodes_tool_id_tools'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], name=op.f('fk_nodes_workflow_id_workflows'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_nodes')),
    sa.UniqueConstraint('workflow_id', 'id', name='uq_nodes_workflow_id_id')
    )
    op.create_index('ix_nodes_agent_id', 'nodes', ['agent_id'], unique=False)
    op.create_index('ix_nodes_tool_id', 'nodes', ['tool_id'], unique=False)
    op.create_index('ix_nodes_workflow_id', 'nodes', ['workflow_id'], unique=False)
    op.create_table('workflow_executions',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('workflow_id', sa.UUID(), nullable=False),
    sa.Column('status', sa.String(length=50), server_default='pending', nullable=False),
    sa.Column('trigger_type', sa.String(length=50), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('input', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('output', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('finished_at IS NULL OR started_at IS NULL OR finished_at >= started_at', name=op.f('ck_workflow_executions_finished_after_start')),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], name=op.f('fk_workflow_executions_workflow_id_workflows'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_executions'))
    )
    op.create_index('ix_workflow_executions_status_created_at', 'workflow_executions', ['status', sa.literal_column('created_at DESC')], unique=False)
    op.create_index('ix_workflow_executions_workflow_id_created_at', 'workflow_executions', ['workflow_id', sa.literal_column('created_at DESC')], unique=False)
    op.create_table('edges',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('workflow_id', sa.UUID(), nullable=False),
    sa.Column('source_node_id', sa.Uuid(), nullable=False),
    sa.Column('target_node_id', sa.Uuid(), nullable=False),
    sa.Column('condition', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('source_node_id <> target_node_id', name=op.f('ck_edges_no_self_loop')),
    sa.ForeignKeyConstraint(['workflow_id', 'source_node_id'], ['nodes.workflow_id', 'nodes.id'], name='fk_edges_source_node_in_workflow', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workflow_id', 'target_node_id'], ['nodes.workflow_id', 'nodes.id'], name='fk_edges_target_node_in_workflow', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], name=op.f('fk_edges_workflow_id_workflows'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_edges')),
    sa.UniqueConstraint('source_node_id', 'target_node_id', name='uq_edges_source_target')
    )
    op.create_index('ix_edges_target_node_id', 'edges', ['target_node_id'], unique=False)
    op.create_index('ix_edges_workflow_id', 'edges', ['workflow_id'], unique=False)
    op.create_table('node_executions',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('workflow_execution_id', sa.UUID(), nullable=False),
    sa.Column('node_id', sa.UUID(), nullable=False),
    sa.Column('status', sa.String(length=50), server_default='pending', nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('input', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('output', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('retry_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('finished_at IS NULL OR started_at IS NULL OR finished_at >= started_at', name=op.f('ck_node_executions_finished_after_start')),
    sa.CheckConstraint('retry_count >= 0', name=op.f('ck_node_executions_retry_count_not_negative')),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], name=op.f('fk_node_executions_node_id_nodes'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['workflow_execution_id'], ['workflow_executions.id'], name=op.f('fk_node_executions_workflow_execution_id_workflow_executions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_node_executions'))
    )
    op.create_index('ix_node_executions_node_id', 'node_executions', ['node_id'], unique=False)
    op.create_index('ix_node_executions_status', 'node_executions', ['status'], unique=False)
    op.create_index('ix_node_executions_workflow_execution_id', 'node_executions', ['workflow_execution_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_node_executions_workflow_execution_id', table_name='node_executions')
    op.drop_index('ix_node_executions_status', table_name='node_executions')
    op.drop_index('ix_node_executions_node_id', table_name='node_executions')
    op.drop_table('node_executions')
    op.drop_index('ix_edges_workflow_id', table_name='edges')
    op.drop_index('ix_edges_target_node_id', table_name='edges')
    op.drop_table('edges')
    op.drop_index('ix_workflow_executions_workflow_id_created_at', table_name='workflow_executions')
    op.drop_index('ix_workflow_executions_status_created_at', table_name='workflow_executions')
    op.drop_table('workflow_executions')
    op.drop_index('ix_nodes_workflow_id', table_name='nodes')
    op.drop_index('ix_nodes_tool_id', table_name='nodes')
    op.drop_index('ix_nodes_agent_id', table_name='nodes')
    op.drop_table('nodes')
    op.drop_index('ix_agent_tools_tool_id', table_name='agent_tools')
    op.drop_table('agent_tools')
    op.drop_index('ix_workflows_trigger_type', table_name='workflows')
    op.drop_table('workflows')
    op.drop_index('uq_tools_name_live', table_name='tools', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_tools_tool_type', table_name='tools')
    op.drop_table('tools')
    op.drop_index('uq_agents_name_live', table_name='agents', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_table('agents')
