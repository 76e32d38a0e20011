"""Generate column values from a factory's declarations, fast, for bulk writes.

factory_boy resolves each object through its general machinery, about 150 us a row here:
too slow to seed a million rows. ``rows()`` reads the same declarations once and
evaluates them directly, so the factories stay the single source of realistic data while
a row costs a few microseconds. It handles the declarations seeding needs (constants,
LazyFunction, LazyAttribute, Sequence, SelfAttribute, Iterator, fuzzy attributes, Faker);
relations are given as foreign-key values, and anything else is refused by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from factory import declarations, fuzzy
from factory.base import Factory
from factory.faker import Faker
from sqlalchemy import inspect

from project.exceptions import ProjectError

Evaluator = Callable[["_Row", int], Any]
_RELATIONAL = (declarations.SubFactory, declarations.PostGenerationDeclaration)


class _Row:
    """The row being built; LazyAttribute and SelfAttribute read other fields from it."""

    __slots__ = ("plan", "sequence", "values")

    def __init__(self, plan: dict[str, Evaluator], values: dict[str, Any], sequence: int) -> None:
        self.plan = plan
        self.values = values
        self.sequence = sequence

    def __getattr__(self, name: str) -> Any:
        values = self.values
        if name not in values:
            if name not in self.plan:
                raise AttributeError(name)
            values[name] = self.plan[name](self, self.sequence)
        return values[name]


def _self_attribute(decl: declarations.SelfAttribute) -> Evaluator:
    if decl.depth > 1:
        raise ProjectError(f"rows() cannot follow SelfAttribute({decl.attribute_name!r}) upwards")
    path = decl.attribute_name.split(".")

    def evaluate(row: _Row, n: int) -> Any:
        value: Any = row
        for part in path:
            value = getattr(value, part)
        return value

    return evaluate


def _faker(decl: Faker) -> Evaluator:
    params = dict(decl._defaults)
    fake = decl._get_faker(params.pop("locale", None))
    provider = decl.provider
    return lambda row, n: fake.format(provider, **params)


def _evaluator(name: str, decl: Any) -> Evaluator:
    if not isinstance(decl, declarations.BaseDeclaration):
        return lambda row, n: decl
    if isinstance(decl, declarations.LazyFunction):
        return lambda row, n: decl.function()
    if isinstance(decl, declarations.LazyAttributeSequence):
        return lambda row, n: decl.function(row, n)
    if isinstance(decl, declarations.LazyAttribute):
        return lambda row, n: decl.function(row)
    if isinstance(decl, declarations.Sequence):
        return lambda row, n: decl.function(n)
    if isinstance(decl, declarations.SelfAttribute):
        return _self_attribute(decl)
    if isinstance(decl, declarations.Iterator):
        return lambda row, n: decl.evaluate(None, None, None)
    if isinstance(decl, fuzzy.BaseFuzzyAttribute):
        return lambda row, n: decl.fuzz()
    if isinstance(decl, Faker):
        return _faker(decl)
    raise ProjectError(f"rows() cannot evaluate {type(decl).__name__} for field {name!r}")


def _foreign_keys(model: type[Any]) -> dict[str, set[str]]:
    """Map each relationship of ``model`` to its foreign-key attribute names."""
    mapper = inspect(model)
    result: dict[str, set[str]] = {}
    for rel in mapper.relationships:
        keys = {mapper.get_property_by_column(col).key for col in rel.local_columns}
        result[rel.key] = keys
    return result


def _choose(decl: Any, traits: dict[str, bool]) -> Any:
    """Resolve a trait's Maybe to the declaration it picks for this batch."""
    while isinstance(decl, declarations.Maybe):
        decider = decl.decider
        if not isinstance(decider, declarations.SelfAttribute) or decider.depth != 1:
            raise ProjectError("rows() supports Maybe only as written by factory.Trait")
        decl = decl.yes if traits.get(decider.attribute_name, False) else decl.no
    return decl


def compile_plan(factory: type[Factory[Any]], overrides: dict[str, Any]) -> dict[str, Evaluator]:
    """Return an evaluator per field for ``factory``, with ``overrides`` as constants.

    Traits are passed like fields (``failed=True``) and apply to the whole batch.
    """
    model = factory._meta.model
    overrides = dict(overrides)
    traits = {
        name: bool(overrides.pop(name))
        for name in list(overrides)
        if isinstance(factory._meta.parameters.get(name), declarations.Trait)
    }
    relations = _foreign_keys(model)
    declared = factory._meta.pre_declarations.as_dict()
    declared.update(factory._meta.post_declarations.as_dict())
    unknown = set(overrides) - set(declared) - {attr.key for attr in inspect(model).column_attrs}
    if unknown:
        raise ProjectError(f"rows() got fields {sorted(unknown)} that {model.__name__} lacks")
    plan: dict[str, Evaluator] = {}
    for name, decl in declared.items():
        decl = _choose(decl, traits)
        if name in overrides or decl is declarations.SKIP:
            continue
        if isinstance(decl, _RELATIONAL):
            if name in relations and relations[name] & set(overrides):
                continue  # the caller gave the foreign key
            raise ProjectError(
                f"rows() does not build related objects: pass "
                f"{' and '.join(sorted(relations.get(name, {name + '_id'})))}= for {name!r}"
            )
        plan[name] = _evaluator(name, decl)
    for name, value in overrides.items():
        plan[name] = (lambda v: lambda row, n: v)(value)
    return plan


def rows(factory: type[Factory[Any]], count: int, **overrides: Any) -> Iterator[dict[str, Any]]:
    """Yield ``count`` dicts of field values built from ``factory``'s declarations."""
    return evaluate(factory, compile_plan(factory, overrides), count)


def evaluate(
    factory: type[Factory[Any]], plan: dict[str, Evaluator], count: int
) -> Iterator[dict[str, Any]]:
    """Yield ``count`` dicts of field values from a compiled ``plan``."""
    names = list(plan)
    next_sequence: Callable[[], int] = factory._meta.next_sequence
    for _ in range(count):
        values: dict[str, Any] = {}
        row = _Row(plan, values, next_sequence())
        for name in names:
            if name not in values:
                values[name] = plan[name](row, row.sequence)
        yield values
