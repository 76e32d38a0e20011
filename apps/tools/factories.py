"""Factories for the tools app."""

from __future__ import annotations

from typing import Any

import factory
from factory.fuzzy import FuzzyChoice

from apps.tools.models import Tool
from project.enums import ToolType
from project.factories import AsyncFactory

_CONFIGS: dict[ToolType, dict[str, Any]] = {
    ToolType.DATA_FETCHER: {
        "source": "exchange",
        "symbols": ["BTC-USD", "ETH-USD"],
        "interval": "1m",
    },
    ToolType.TECHNICAL_INDICATOR: {"indicator": "rsi", "period": 14, "overbought": 70},
    ToolType.MARKET_SCREENER: {"universe": "sp500", "min_volume": 1_000_000},
    ToolType.CODE_ANALYZER: {"language": "python", "max_lines": 500},
    ToolType.NOTIFICATION: {"channel": "slack", "webhook": "https://hooks.example.com/T000"},
}


class ToolFactory(AsyncFactory[Tool]):
    """A live tool with a realistic configuration for its type."""

    class Meta:
        model = Tool

    tool_type = FuzzyChoice(list(ToolType))
    name = factory.Sequence(lambda n: f"tool-{n:05d}")
    description = factory.Faker("sentence", nb_words=8)
    config = factory.LazyAttribute(lambda tool: dict(_CONFIGS[tool.tool_type]))
    is_active = True

    class Params:
        inactive = factory.Trait(is_active=False)
