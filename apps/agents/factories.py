"""Factories for the agents app."""

from __future__ import annotations

import factory
from factory.fuzzy import FuzzyChoice

from apps.agents.models import Agent
from apps.tools.factories import ToolFactory
from project.enums import AuthMode, ModelProvider
from project.factories import AsyncFactory

MODELS = {
    ModelProvider.ANTHROPIC: "claude-sonnet-4",
    ModelProvider.OPENAI: "gpt-4.1",
    ModelProvider.GLM: "glm-4.6",
}
AUTH = {
    ModelProvider.ANTHROPIC: AuthMode.SDK,
    ModelProvider.OPENAI: AuthMode.STANDALONE,
    ModelProvider.GLM: AuthMode.GLM,
}


class AgentFactory(AsyncFactory[Agent]):
    """An agent with a plausible model for its provider; ``with_tools=True`` adds two."""

    class Meta:
        model = Agent

    model_provider = FuzzyChoice(list(ModelProvider))
    name = factory.Sequence(lambda n: f"agent-{n:05d}")
    model_name = factory.LazyAttribute(lambda agent: MODELS[agent.model_provider])
    auth_mode = factory.LazyAttribute(lambda agent: AUTH[agent.model_provider])
    system_prompt = factory.Faker("paragraph", nb_sentences=3)
    config = factory.LazyFunction(lambda: {"temperature": 0.2, "max_tokens": 2048})
    is_active = True

    class Params:
        with_tools = factory.Trait(tools=factory.LazyFunction(lambda: ToolFactory.build_batch(2)))
