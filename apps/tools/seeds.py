"""Seeders of the tools app: the built-in tools (reference data)."""

from __future__ import annotations

from apps.tools.factories import ToolFactory
from apps.tools.models import Tool
from project.enums import ToolType
from project.factories.rows import rows
from project.seeding import SeedContext, seeder

BUILTIN_TOOLS: list[tuple[str, ToolType, str]] = [
    ("price-feed", ToolType.DATA_FETCHER, "Streams OHLCV candles from the exchange."),
    ("order-book", ToolType.DATA_FETCHER, "Fetches the top 50 levels of the order book."),
    ("rsi", ToolType.TECHNICAL_INDICATOR, "Relative strength index over a rolling window."),
    ("macd", ToolType.TECHNICAL_INDICATOR, "Moving average convergence/divergence."),
    ("momentum-screener", ToolType.MARKET_SCREENER, "Ranks symbols by 20-day momentum."),
    ("strategy-linter", ToolType.CODE_ANALYZER, "Checks strategy code for look-ahead bias."),
    ("slack-alert", ToolType.NOTIFICATION, "Posts a message to the trading channel."),
    ("email-digest", ToolType.NOTIFICATION, "Sends the daily summary by email."),
]


@seeder(reference=True)
async def builtin(ctx: SeedContext) -> None:
    """Upsert the built-in tools by name; their ids are shared as ``tools`` (by name)."""
    built = [
        next(rows(ToolFactory, 1, name=name, tool_type=kind, description=text, is_active=True))
        for name, kind, text in BUILTIN_TOOLS
    ]
    ctx.shared["tools"] = await ctx.upsert(Tool, built, key="name")
