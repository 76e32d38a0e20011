"""Seeders of the agents app: the built-in agents and the tools they use (reference)."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert

from apps.agents.factories import AgentFactory
from apps.agents.models import Agent, agent_tools
from project.enums import ModelProvider
from project.factories.rows import rows
from project.seeding import SeedContext, seeder

BUILTIN_AGENTS: list[tuple[str, ModelProvider, str, list[str]]] = [
    (
        "market-analyst",
        ModelProvider.ANTHROPIC,
        "You analyse price action and indicators and rate the setup from 0 to 1.",
        ["price-feed", "rsi", "macd"],
    ),
    (
        "risk-reviewer",
        ModelProvider.OPENAI,
        "You review proposed trades against position limits and say approve or reject.",
        ["order-book"],
    ),
    (
        "strategy-coder",
        ModelProvider.GLM,
        "You write and fix strategy code; run the linter before you answer.",
        ["strategy-linter"],
    ),
]


@seeder(depends_on=["tools.builtin"], reference=True)
async def builtin(ctx: SeedContext) -> None:
    """Upsert the built-in agents by name and link their tools; ids shared as ``agents``."""
    built = [
        next(
            rows(
                AgentFactory,
                1,
                name=name,
                model_provider=provider,
                system_prompt=prompt,
                is_active=True,
            )
        )
        for name, provider, prompt, _ in BUILTIN_AGENTS
    ]
    agents = await ctx.upsert(Agent, built, key="name")
    tools = ctx.shared["tools"]
    links = [
        {"agent_id": agents[name], "tool_id": tools[tool]}
        for name, _, _, tool_names in BUILTIN_AGENTS
        for tool in tool_names
    ]
    result = await ctx.session.execute(
        insert(agent_tools).values(links).on_conflict_do_nothing().returning(agent_tools.c.agent_id)
    )
    ctx.rows_written[agent_tools.name] += len(result.all())
    ctx.shared["agents"] = agents
