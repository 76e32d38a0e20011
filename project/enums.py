"""The domain's enumerations, stored as their string values (see ``project.orm.types``)."""

from enum import StrEnum


class NodeType(StrEnum):
    """What a node in a workflow graph does."""

    TRIGGER = "trigger"
    TOOL = "tool"
    AGENT = "agent"
    CONDITION = "condition"
    ADAPTER = "adapter"
    PARALLEL = "parallel"
    AGGREGATOR = "aggregator"


class ToolType(StrEnum):
    """The kind of a tool."""

    DATA_FETCHER = "data_fetcher"
    TECHNICAL_INDICATOR = "technical_indicator"
    MARKET_SCREENER = "market_screener"
    CODE_ANALYZER = "code_analyzer"
    NOTIFICATION = "notification"


class ModelProvider(StrEnum):
    """Who serves an agent's language model."""

    ANTHROPIC = "anthropic"
    OPENAI = "openai"
    GLM = "glm"


class ExecutionStatus(StrEnum):
    """Where an execution stands."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class AuthMode(StrEnum):
    """How an agent authenticates with its provider."""

    OAUTH = "oauth"
    STANDALONE = "standalone"
    SDK = "sdk"
    GLM = "glm"


class TriggerType(StrEnum):
    """What starts a workflow."""

    SCHEDULE = "schedule"
    EVENT = "event"
    MANUAL = "manual"
