"""``AsyncFactory`` agrees with factory_boy, declaration by declaration.

Each factory here is checked the same way: with the sequences reset and the random
generators reseeded, ``build()``, ``build_batch()`` and ``await create_batch()`` /
``await create()`` must give the objects that factory_boy's own resolver gives
(``Factory.build`` / ``Factory.create``), field by field and link by link. ``create`` writes
through the test's ``db_session``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import factory
import factory.random
import pytest
from factory import fuzzy
from factory.base import BaseFactory
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from apps.agents.factories import AgentFactory
from apps.executions.factories import NodeExecutionFactory, WorkflowExecutionFactory
from apps.tools.factories import ToolFactory
from apps.tools.models import Tool
from apps.workflows.factories import EdgeFactory, NodeFactory, WorkflowFactory
from apps.workflows.models import Node, Workflow
from project import factories
from project.enums import NodeType, ToolType
from project.exceptions import ProjectError
from project.factories import AsyncFactory
from project.factories.rows import rows

SEED = 20240611
APP_FACTORIES: tuple[type[AsyncFactory[Any]], ...] = (
    ToolFactory,
    AgentFactory,
    WorkflowFactory,
    NodeFactory,
    EdgeFactory,
    WorkflowExecutionFactory,
    NodeExecutionFactory,
)
#: Left out of the comparison: set by the database on flush, keys (links compare instead),
#: or read from the clock (runs start "five minutes ago").
MANAGED = {"id", "created_at", "updated_at", "version", "started_at", "finished_at"}
#: Iterator declarations keep their position between builds: reset with the sequences.
ITERATORS: list[factory.Iterator] = []

Snapshot = list[tuple[str, dict[str, Any], dict[str, Any]]]


def case_id(value: Any) -> str:
    """Name a parametrized case without memory addresses (xdist workers must agree)."""
    if isinstance(value, dict):
        return ",".join(f"{key}={case_id(item)}" for key, item in value.items()) or "defaults"
    if isinstance(value, factory.declarations.BaseDeclaration):
        return type(value).__name__
    if isinstance(value, type):
        return value.__name__
    return repr(value)


def snapshot(*objects: object) -> Snapshot:
    """Describe ``objects`` and the objects they link to: class, column values, links.

    Reads only what is set (nothing is loaded; a field left to the model is absent).
    Objects are numbered in the order they are reached, so shared objects (an edge's
    nodes on the edge's workflow) compare too.
    """
    numbers: dict[int, int] = {}
    described: Snapshot = []

    def visit(obj: object) -> int:
        if id(obj) in numbers:
            return numbers[id(obj)]
        numbers[id(obj)] = number = len(described)
        state = inspect(obj)
        links: dict[str, Any] = {}
        columns = {
            attr.key: state.dict[attr.key]
            for attr in state.mapper.column_attrs
            if attr.key in state.dict
            and attr.key not in MANAGED
            and not any(col.foreign_keys for col in attr.columns)
        }
        described.append((type(obj).__name__, columns, links))
        for rel in state.mapper.relationships:
            if rel.key in state.dict:
                value = state.dict[rel.key]
                if value is None:
                    links[rel.key] = None
                elif isinstance(value, list):
                    links[rel.key] = [visit(item) for item in value]
                else:
                    links[rel.key] = visit(value)
        return number

    for obj in objects:
        visit(obj)
    return described


def reset(factory_class: type[AsyncFactory[Any]], start: int = 0) -> None:
    """Restart every sequence at ``start``, the iterators, and the random generators."""
    every: tuple[type[Any], ...] = (*APP_FACTORIES, factory_class)
    for each in every:
        each.reset_sequence(start, force=True)
    for iterator in ITERATORS:
        iterator.reset()
    factory.random.reseed_random(SEED + start)


#: factory_boy's own ``build`` and ``create`` (classmethods), to call on any factory.
_FACTORY_BOY_BUILD: Any = vars(BaseFactory)["build"]
_FACTORY_BOY_CREATE: Any = vars(BaseFactory)["create"]


def by_factory_boy(
    factory_class: type[AsyncFactory[Any]], size: int, *, create: bool = False, **kwargs: Any
) -> list[Any]:
    """Return ``size`` objects resolved by factory_boy's own ``Factory.build``/``create``."""
    generate = (_FACTORY_BOY_CREATE if create else _FACTORY_BOY_BUILD).__func__
    return [generate(factory_class, **kwargs) for _ in range(size)]


def as_created(got: Snapshot, expected: Snapshot) -> Snapshot:
    """Drop from ``got`` the fields that the flush filled in (model defaults) but that
    ``expected``, never flushed, leaves unset."""
    return [
        (name, {key: value for key, value in columns.items() if key in wanted[1]}, links)
        for (name, columns, links), wanted in zip(got, expected, strict=False)
    ] + got[len(expected) :]


async def assert_agrees(
    session: AsyncSession, factory_class: type[AsyncFactory[Any]], **kwargs: Any
) -> list[Any]:
    """Assert that build, build_batch, create_batch and create agree with factory_boy.

    Returns the created objects.
    """
    reset(factory_class)
    expected = snapshot(*by_factory_boy(factory_class, 1, **kwargs))
    reset(factory_class)
    assert snapshot(factory_class.build(**kwargs)) == expected

    reset(factory_class)
    expected = snapshot(*by_factory_boy(factory_class, 3, **kwargs))
    reset(factory_class)
    assert snapshot(*factory_class.build_batch(3, **kwargs)) == expected

    # Created objects take other sequence numbers than the built ones: names are unique.
    reset(factory_class, 100)
    expected = snapshot(*by_factory_boy(factory_class, 3, create=True, **kwargs))
    reset(factory_class, 100)
    created = await factory_class.create_batch(3, **kwargs)
    assert as_created(snapshot(*created), expected) == expected

    reset(factory_class, 200)
    expected = snapshot(*by_factory_boy(factory_class, 1, create=True, **kwargs))
    reset(factory_class, 200)
    created.append(await factory_class.create(**kwargs))
    assert as_created(snapshot(created[-1]), expected) == expected

    for obj in created:
        assert obj in session
        assert inspect(obj).persistent  # flushed
    return created


# --- Params ----------------------------------------------------------------------------------


class PrefixedToolFactory(ToolFactory):
    """A plain parameter (not a field of Tool) that another declaration reads."""

    class Params:
        prefix = "x"

    name = factory.LazyAttributeSequence(lambda tool, n: f"{tool.prefix}-{n:03d}")


async def test_plain_params_are_not_passed_to_the_model(db_session: AsyncSession) -> None:
    reset(PrefixedToolFactory)
    tool = PrefixedToolFactory.build()
    assert tool.name == "x-000"

    created = await assert_agrees(db_session, PrefixedToolFactory)
    assert [tool.name for tool in created] == ["x-100", "x-101", "x-102", "x-200"]
    created = await assert_agrees(db_session, PrefixedToolFactory, prefix="y")
    assert created[0].name == "y-100"


KINDS = factory.Iterator([ToolType.NOTIFICATION, ToolType.CODE_ANALYZER])
ITERATORS.append(KINDS)


class DerivedParamsToolFactory(ToolFactory):
    """Parameters that are declarations themselves, and one that reads another."""

    class Params:
        stem = factory.Sequence(lambda n: f"stem{n}")
        shout = factory.LazyAttribute(lambda tool: tool.stem.upper())
        kind = KINDS

    name: Any = factory.LazyAttribute(lambda tool: f"{tool.shout}-{tool.kind.value}")
    tool_type: Any = factory.SelfAttribute("kind")


async def test_declared_params_are_evaluated_and_left_out(db_session: AsyncSession) -> None:
    created = await assert_agrees(db_session, DerivedParamsToolFactory)
    assert created[0].name == "STEM100-notification"
    await assert_agrees(
        db_session, DerivedParamsToolFactory, stem=factory.Sequence(lambda n: f"given{n}")
    )
    await assert_agrees(db_session, DerivedParamsToolFactory, kind=ToolType.DATA_FETCHER)


# --- Traits ----------------------------------------------------------------------------------


class TraitToolFactory(ToolFactory):
    """Traits that set several fields, read other fields, and enable another trait."""

    class Params:
        notifier = factory.Trait(
            tool_type=ToolType.NOTIFICATION,
            description=factory.LazyAttribute(lambda tool: f"notifies as {tool.name}"),
        )
        loud = factory.Trait(notifier=True, is_active=False)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"inactive": True},
        {"inactive": False},
        {"notifier": True},
        {"notifier": True, "description": "given"},
        {"loud": True},
        {"loud": True, "notifier": False},
        {"notifier": 1},
        {"notifier": factory.LazyAttribute(lambda tool: tool.is_active)},
    ],
    ids=case_id,
)
async def test_traits(db_session: AsyncSession, kwargs: dict[str, Any]) -> None:
    await assert_agrees(db_session, TraitToolFactory, **kwargs)


async def test_traits_given_as_arguments_do_not_share_a_cached_plan(
    db_session: AsyncSession,
) -> None:
    assert TraitToolFactory.build(inactive=True).is_active is False
    assert TraitToolFactory.build(inactive=False).is_active is True
    assert TraitToolFactory.build(notifier=True).tool_type is ToolType.NOTIFICATION
    assert TraitToolFactory.build(notifier=True, tool_type=ToolType.DATA_FETCHER).tool_type is (
        ToolType.DATA_FETCHER
    )
    assert TraitToolFactory.build(is_active=1).is_active == 1
    assert TraitToolFactory.build(is_active=True).is_active is True
    assert (await TraitToolFactory.create(loud=True)).is_active is False


def test_soft_deleted_trait_of_every_factory() -> None:
    tool = ToolFactory.build(soft_deleted=True)
    assert tool.deleted_at is not None
    assert "soft_deleted" not in vars(tool)


# --- Meta.exclude and Meta.rename --------------------------------------------------------


class ExcludeToolFactory(ToolFactory):
    """A helper field that the model never sees."""

    class Meta:
        exclude = ("stem",)

    stem = factory.Sequence(lambda n: f"stem-{n}")
    name: Any = factory.LazyAttribute(lambda tool: tool.stem.upper())


class RenameToolFactory(ToolFactory):
    """A field declared under another name; the renamed value wins over ``name``."""

    class Meta:
        rename = {"title": "name", "blurb": "description"}

    title = factory.Sequence(lambda n: f"titled-{n}")
    blurb = factory.LazyAttribute(lambda tool: f"about {tool.title}")


@pytest.mark.parametrize(
    ("factory_class", "kwargs"),
    [
        (ExcludeToolFactory, {}),
        (ExcludeToolFactory, {"stem": factory.Sequence(lambda n: f"given{n}")}),
        (RenameToolFactory, {}),
        (RenameToolFactory, {"title": factory.Sequence(lambda n: f"given{n}")}),
        (RenameToolFactory, {"name": "lost to title"}),
    ],
    ids=case_id,
)
async def test_exclude_and_rename(
    db_session: AsyncSession, factory_class: type[AsyncFactory[Any]], kwargs: dict[str, Any]
) -> None:
    created = await assert_agrees(db_session, factory_class, **kwargs)
    assert "stem" not in vars(created[0])
    assert "title" not in vars(created[0])


def test_rename_wins_over_the_declared_name() -> None:
    reset(RenameToolFactory)
    tool = RenameToolFactory.build(name="lost to title")
    assert tool.name == "titled-0"
    assert tool.description == "about titled-0"


# --- SelfAttribute, Maybe, Iterator, Dict and List -----------------------------------------


class SelfAttributeToolFactory(ToolFactory):
    class Params:
        source = factory.LazyFunction(lambda: SimpleNamespace(label="from the source"))

    description: Any = factory.SelfAttribute("source.label")
    config: Any = factory.SelfAttribute("missing", default={"default": True})


class MaybeToolFactory(ToolFactory):
    description: Any = factory.Maybe(
        "is_active", yes_declaration=factory.Faker("word"), no_declaration="retired"
    )
    config: Any = factory.Maybe(
        factory.LazyAttribute(lambda tool: tool.tool_type is ToolType.NOTIFICATION),
        yes_declaration=factory.LazyFunction(lambda: {"channel": "email"}),
    )


TYPES = factory.Iterator([ToolType.DATA_FETCHER, ToolType.NOTIFICATION, ToolType.CODE_ANALYZER])
NAMES = factory.Iterator(["alpha", "beta"], getter=str.upper)
ITERATORS += [TYPES, NAMES]


class IteratorToolFactory(ToolFactory):
    tool_type: Any = TYPES
    description: Any = NAMES

    @factory.iterator  # type: ignore[untyped-decorator]
    def config() -> Iterable[dict[str, int]]:
        return ({"line": n} for n in itertools.count())


ITERATORS.append(IteratorToolFactory.config)


class DictListToolFactory(ToolFactory):
    config: Any = factory.Dict(
        {
            "label": factory.SelfAttribute("..name"),
            "step": factory.Sequence(lambda n: n * 10),
            "windows": factory.List([factory.Faker("word"), "fixed"]),
        }
    )


@pytest.mark.parametrize(
    ("factory_class", "kwargs"),
    [
        (SelfAttributeToolFactory, {}),
        (SelfAttributeToolFactory, {"source": SimpleNamespace(label="given")}),
        (MaybeToolFactory, {}),
        (MaybeToolFactory, {"is_active": False}),
        (MaybeToolFactory, {"tool_type": ToolType.NOTIFICATION}),
        (IteratorToolFactory, {}),
        (DictListToolFactory, {}),
        (DictListToolFactory, {"config__step": 7}),
    ],
    ids=case_id,
)
async def test_self_attribute_maybe_iterator_dict_list(
    db_session: AsyncSession, factory_class: type[AsyncFactory[Any]], kwargs: dict[str, Any]
) -> None:
    await assert_agrees(db_session, factory_class, **kwargs)


def test_maybe_skip_leaves_the_field_to_the_model() -> None:
    tool = MaybeToolFactory.build(tool_type=ToolType.DATA_FETCHER)
    assert "config" not in vars(tool)
    assert MaybeToolFactory.build(tool_type=ToolType.NOTIFICATION).config == {"channel": "email"}


# --- sequences, lazy values, declarations given as arguments --------------------------------


class LazyToolFactory(ToolFactory):
    name: Any = factory.Sequence(lambda n: f"seq-{n}")
    description: Any = factory.LazyAttributeSequence(lambda tool, n: f"{tool.name} is number {n}")
    config: Any = factory.LazyFunction(lambda: {"at": "noon"})

    @factory.lazy_attribute  # type: ignore[untyped-decorator]
    def is_active(tool: Any) -> bool:
        return bool(tool.name.endswith(("0", "2", "4", "6", "8")))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"config": {"fixed": True}},
        {"name": factory.Sequence(lambda n: f"given-{n}")},
        {"description": factory.LazyAttribute(lambda tool: tool.name * 2)},
        {"config": factory.Dict({"n": factory.Sequence(int)})},
    ],
    ids=case_id,
)
async def test_sequences_and_lazy_values(db_session: AsyncSession, kwargs: dict[str, Any]) -> None:
    await assert_agrees(db_session, LazyToolFactory, **kwargs)


def test_declarations_given_as_arguments_are_evaluated() -> None:
    reset(ToolFactory)
    tool = ToolFactory.build(name=factory.Sequence(lambda n: f"given-{n}"))
    assert tool.name == "given-0"


ORDER = factory.Iterator([1, 2, 3])
ITERATORS.append(ORDER)


class KeywordsFactory(AsyncFactory[dict[str, Any]]):
    """A dict for a model: it shows the keyword arguments a model gets, in their order."""

    class Meta:
        model = dict
        exclude = ("hidden",)
        rename = {"old": "new"}

    class Params:
        p = 3
        flag = factory.Trait(b=factory.LazyAttribute(lambda row: row.a * 2), c="flagged")

    a = factory.Sequence(lambda n: n)
    old = "renamed"
    hidden = factory.LazyAttribute(lambda row: row.a + row.p)
    b = factory.SelfAttribute("hidden")
    c = factory.Faker("word")
    d = factory.Maybe("flag", "yes", "no")
    e = ORDER
    f = fuzzy.FuzzyInteger(0, 100)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"flag": True},
        {"z": 1, "a": 5},
        {"new": "given"},
        {"old": "given", "hidden": 7},
        {"p": factory.Sequence(lambda n: n * 100)},
    ],
    ids=case_id,
)
def test_model_gets_factory_boys_keywords_in_their_order(kwargs: dict[str, Any]) -> None:
    reset(KeywordsFactory)
    expected = [list(made.items()) for made in by_factory_boy(KeywordsFactory, 3, **kwargs)]
    reset(KeywordsFactory)
    assert [list(made.items()) for made in KeywordsFactory.build_batch(3, **kwargs)] == expected
    assert factories._direct_plan(KeywordsFactory, kwargs) is not None


def test_cycles_raise_as_in_factory_boy() -> None:
    class CycleFactory(AsyncFactory[dict[str, Any]]):
        class Meta:
            model = dict

        a = factory.LazyAttribute(lambda row: row.b)
        b = factory.LazyAttribute(lambda row: row.a)

    with pytest.raises(factory.errors.CyclicDefinitionError):
        by_factory_boy(CycleFactory, 1)
    with pytest.raises(factory.errors.CyclicDefinitionError):
        CycleFactory.build()


def test_each_object_takes_one_sequence_number_on_either_path() -> None:
    reset(ToolFactory)
    fast = ToolFactory.build_batch(2)
    slow = ToolFactory.build(config=factory.Dict({"name": factory.SelfAttribute("..name")}))
    after = by_factory_boy(ToolFactory, 1)
    again = ToolFactory.build()
    assert [t.name for t in [*fast, slow, *after, again]] == [f"tool-{n:05d}" for n in range(5)]
    assert slow.config == {"name": "tool-00002"}


def test_plain_factories_take_the_fast_path() -> None:
    cases: list[tuple[type[AsyncFactory[Any]], dict[str, Any]]] = [
        (ToolFactory, {}),
        (ToolFactory, {"inactive": True}),
        (PrefixedToolFactory, {"prefix": "y"}),
        (ExcludeToolFactory, {}),
        (RenameToolFactory, {}),
        (TraitToolFactory, {"loud": True}),
        (WorkflowFactory, {}),
        (AgentFactory, {}),
        (FakerToolFactory, {}),
        (FuzzyToolFactory, {}),
        (MaybeToolFactory, {"is_active": False}),
        (IteratorToolFactory, {}),
        (LazyToolFactory, {"name": factory.Sequence(str)}),
    ]
    for factory_class, kwargs in cases:
        assert factories._direct_plan(factory_class, kwargs) is not None, factory_class


# --- Faker and fuzzy attributes ---------------------------------------------------------------


class FakerToolFactory(ToolFactory):
    name: Any = factory.Faker("user_name")
    description = factory.Faker("name", locale="fr_FR")
    config: Any = factory.Faker("pydict", nb_elements=2, value_types=[int])
    is_active: Any = factory.Faker("pybool")


class NestedFakerToolFactory(ToolFactory):
    """A Faker argument that is itself a declaration (factory_boy resolves it first)."""

    class Params:
        longest = 12

    description = factory.Faker("pystr", max_chars=factory.SelfAttribute("..longest"))


class FuzzyToolFactory(ToolFactory):
    name: Any = fuzzy.FuzzyText(prefix="fz-", length=8)
    description: Any = fuzzy.FuzzyAttribute(lambda: str(factory.random.randgen.random()))
    config: Any = fuzzy.FuzzyAttribute(
        lambda: {
            "int": fuzzy.FuzzyInteger(1, 9).fuzz(),
            "decimal": str(fuzzy.FuzzyDecimal(0.5, 9.5).fuzz()),
            "at": fuzzy.FuzzyDateTime(
                datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC)
            )
            .fuzz()
            .isoformat(),
        }
    )


@pytest.mark.parametrize(
    ("factory_class", "kwargs"),
    [
        (ToolFactory, {}),
        (FakerToolFactory, {}),
        (NestedFakerToolFactory, {}),
        (NestedFakerToolFactory, {"longest": 3}),
        (FuzzyToolFactory, {}),
        (AgentFactory, {}),
        (WorkflowFactory, {}),
    ],
    ids=case_id,
)
async def test_faker_and_fuzzy(
    db_session: AsyncSession, factory_class: type[AsyncFactory[Any]], kwargs: dict[str, Any]
) -> None:
    await assert_agrees(db_session, factory_class, **kwargs)


def test_faker_follows_the_default_locale() -> None:
    class LocalFactory(ToolFactory):
        description = factory.Faker("name")

    reset(LocalFactory)
    with factory.Faker.override_default_locale("ja_JP"):
        expected = snapshot(*by_factory_boy(LocalFactory, 3))
        reset(LocalFactory)
        built = LocalFactory.build_batch(3)
    assert snapshot(*built) == expected
    assert not built[0].description.isascii()
    assert LocalFactory.build().description.isascii()


# --- SubFactory, RelatedFactory and post-generation ---------------------------------------


@pytest.mark.parametrize(
    ("factory_class", "kwargs"),
    [
        (NodeFactory, {}),
        (NodeFactory, {"workflow__name": "given"}),
        (NodeFactory, {"tool_node": True}),
        (NodeFactory, {"agent_node": True}),
        (EdgeFactory, {}),  # SelfAttribute("..workflow") in two SubFactories
        (WorkflowExecutionFactory, {"completed": True}),
        (NodeExecutionFactory, {}),  # SelfAttribute("..workflow_execution.workflow")
        (NodeExecutionFactory, {"failed": True}),
        (AgentFactory, {"with_tools": True}),
        (WorkflowFactory, {"with_graph": True}),
    ],
    ids=case_id,
)
async def test_sub_factories(
    db_session: AsyncSession, factory_class: type[AsyncFactory[Any]], kwargs: dict[str, Any]
) -> None:
    await assert_agrees(db_session, factory_class, **kwargs)


async def test_sub_factory_objects_share_what_self_attribute_points_to(
    db_session: AsyncSession,
) -> None:
    edge = await EdgeFactory.create()
    assert edge.source_node.workflow is edge.workflow
    assert edge.target_node.workflow is edge.workflow
    run = await NodeExecutionFactory.create()
    assert run.node.workflow is run.workflow_execution.workflow


class RelatedWorkflowFactory(WorkflowFactory):
    first = factory.RelatedFactory(NodeFactory, factory_related_name="workflow", name="first")
    more = factory.RelatedFactoryList(
        NodeFactory, factory_related_name="workflow", size=2, node_type=NodeType.TRIGGER
    )


class RelatedToolFactory(ToolFactory):
    """A related object that its parent does not link to: only create can add it."""

    node = factory.RelatedFactory(NodeFactory, factory_related_name="tool", tool_node=True)


@pytest.mark.parametrize(
    ("factory_class", "kwargs"),
    [
        (RelatedWorkflowFactory, {}),
        (RelatedWorkflowFactory, {"first__name": "given"}),
        (RelatedWorkflowFactory, {"more__name": "more"}),
    ],
    ids=case_id,
)
async def test_related_factories(
    db_session: AsyncSession, factory_class: type[AsyncFactory[Any]], kwargs: dict[str, Any]
) -> None:
    created = await assert_agrees(db_session, factory_class, **kwargs)
    assert created[0].nodes[0].name in {"first", "given"}


async def test_related_factory_objects_are_created_too(db_session: AsyncSession) -> None:
    tool = await RelatedToolFactory.create()
    nodes = await db_session.scalars(select(Node).where(Node.tool_id == tool.id))
    assert len(list(nodes)) == 1


class PostGenerationToolFactory(ToolFactory):
    stamp = factory.PostGeneration(
        lambda tool, create, extracted, **kw: setattr(
            tool, "description", f"{'created' if create else 'built'} {extracted} {kw}"
        )
    )

    @factory.post_generation  # type: ignore[untyped-decorator]
    def rename(tool: Tool, create: bool, extracted: Any, **kwargs: Any) -> None:
        if extracted:
            tool.name = f"{tool.name}-{extracted}{kwargs.get('suffix', '')}"


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"stamp": "given"},
        {"stamp__extra": 1},
        {"rename": "r"},
        {"rename": "r", "rename__suffix": "!"},
    ],
    ids=case_id,
)
async def test_post_generation(db_session: AsyncSession, kwargs: dict[str, Any]) -> None:
    created = await assert_agrees(db_session, PostGenerationToolFactory, **kwargs)
    assert created[0].description.startswith("created ")
    assert PostGenerationToolFactory.build().description.startswith("built ")


async def test_created_graph_is_written(db_session: AsyncSession) -> None:
    workflow = await WorkflowFactory.create(with_graph=True)
    loaded = await db_session.scalar(Workflow.with_graph().where(Workflow.id == workflow.id))
    assert loaded is not None
    assert len(loaded.nodes) == 6
    assert len(loaded.edges) == 5


# --- rows() for seeding ---------------------------------------------------------------------


def test_rows_take_foreign_keys_and_refuse_related_objects_by_name() -> None:
    (row,) = rows(NodeFactory, 1, workflow_id=None)
    assert row["workflow_id"] is None
    assert "workflow" not in row
    with pytest.raises(ProjectError, match="workflow_id= for 'workflow'"):
        next(rows(NodeFactory, 1))


def test_rows_leave_parameters_out() -> None:
    (row,) = rows(PrefixedToolFactory, 1, prefix="p")
    assert row["name"].startswith("p-")
    assert "prefix" not in row
    (row,) = rows(ToolFactory, 1, inactive=True)
    assert row["is_active"] is False
    assert "inactive" not in row


def test_rows_are_what_the_factory_builds() -> None:
    reset(ToolFactory)
    built = [
        {key: value for key, value in columns.items() if key != "deleted_at"}
        for _, columns, _ in snapshot(*ToolFactory.build_batch(3))
    ]
    reset(ToolFactory)
    assert list(rows(ToolFactory, 3)) == built
