"""Evaluate a factory's declarations directly: the factories' fast path and seeding's rows.

factory_boy resolves each object through its general machinery, 70 to 100 us a row here:
too slow to seed a million rows. A ``Plan`` reads a factory's declarations once, as
factory_boy's ``StepBuilder`` does (the class declarations merged with the call's
arguments, then every field in order, then ``Meta.exclude``, the Params, ``SKIP`` and
``Meta.rename`` applied to the result), and evaluates each row directly, so the factories
stay the single source of realistic data while a row costs a few microseconds (2.6 us for
``NodeFactory``; a Faker field adds Faker's own time).

This module is also the one place that reads factory_boy's declarations and options
(``builder.parse_declarations``, ``_meta``): factory_boy has no public API for them. The
parity tests (``tests/project/factories/``) compare every supported declaration with
factory_boy's own build and fail if factory_boy changes.

A plan reproduces factory_boy exactly or not at all. It evaluates constants and Params,
Traits and Maybe, LazyFunction, LazyAttribute, Sequence, LazyAttributeSequence,
SelfAttribute on the object itself, Iterator, fuzzy attributes and Faker, each through the
declaration's own code or its public attributes, and only when the declaration's class
evaluates the way factory_boy's does. Anything else (a SubFactory, Dict or List, a
post-generation declaration that would run, a declaration subclass with its own
evaluation, ``field__sub`` arguments) raises ``Unsupported``: ``AsyncFactory`` then lets
factory_boy build, and ``rows()`` refuses it by name. For seeding, ``rows()`` also takes a
relation's foreign key in place of its SubFactory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from factory import builder, declarations, enums, errors, fuzzy
from factory.base import Factory, FactoryOptions
from factory.faker import Faker
from sqlalchemy import inspect

from project.exceptions import ProjectError

__all__ = ["Guards", "Plan", "Unsupported", "compile_plan", "is_declaration", "rows"]

Evaluator = Callable[["_Row", int], Any]
#: Arguments whose truthiness a plan was compiled for: (name, bool(value)) pairs.
Guards = tuple[tuple[str, bool], ...]

_B = declarations.BaseDeclaration
_SKIP = declarations.SKIP
_PENDING: Any = object()  # a field not evaluated yet
_EVALUATING: Any = object()  # a field being evaluated: reading it again is a cycle


class Unsupported(ProjectError):
    """A plan cannot reproduce factory_boy for these declarations and arguments.

    ``guards`` are the arguments whose truthiness the verdict depends on: any call with the
    same argument names that agrees on them gets the same verdict.
    """

    def __init__(self, message: str, guards: Guards = ()) -> None:
        super().__init__(message)
        self.guards = guards


def is_declaration(value: Any) -> bool:
    """Return whether factory_boy evaluates ``value`` rather than passing it on."""
    return enums.get_builder_phase(value) is not None


class _Row:
    """The object being built, as declarations see it (factory_boy's ``Resolver``).

    Reading a field that is not evaluated yet evaluates it. The slots' names are mangled,
    like the Resolver's, so that no field name is shadowed.
    """

    __slots__ = ("__evaluators", "__sequence", "__values")

    def __init__(
        self, evaluators: Mapping[str, Evaluator], values: dict[str, Any], sequence: int
    ) -> None:
        self.__evaluators = evaluators
        self.__values = values
        self.__sequence = sequence

    @property
    def factory_parent(self) -> None:
        """Return None, as the Resolver does for an object built on its own."""
        return None

    def __getattr__(self, name: str) -> Any:
        values = self.__values
        try:
            value = values[name]
        except KeyError:
            raise AttributeError(name) from None
        if value is _EVALUATING:
            raise errors.CyclicDefinitionError(f"Cyclic lazy attribute definition for {name!r}")
        if value is _PENDING:
            values[name] = _EVALUATING
            try:
                value = self.__evaluators[name](self, self.__sequence)
            except BaseException:
                # SelfAttribute(default=...) swallows AttributeError: try again later.
                values[name] = _PENDING
                raise
            values[name] = value
        return value


class _Nested(Exception):
    """A declaration's arguments hold declarations: factory_boy resolves them in a
    nested build, which a plan does not reproduce."""


class _Probe:
    """The step ``unroll_context`` gets when a plan reads a declaration's arguments."""

    sequence = 0

    def recurse(self, *args: Any, **kwargs: Any) -> Any:
        raise _Nested


class _Nothing:
    """An object without fields: what SelfAttribute reads an undeclared field on."""

    __slots__ = ()


_NOTHING = _Nothing()


def _evaluates_like(decl: Any, kind: type[Any]) -> bool:
    """Return whether ``decl`` evaluates with ``kind``'s own code and the base unrolling."""
    cls = type(decl)
    return (
        isinstance(decl, kind)
        and cls.evaluate is kind.evaluate
        and cls.evaluate_pre is _B.evaluate_pre
        and cls.unroll_context is _B.unroll_context
    )


def _is_maybe(decl: Any) -> bool:
    cls = type(decl)
    return (
        isinstance(decl, declarations.Maybe)
        and cls.evaluate_pre is declarations.Maybe.evaluate_pre
        and cls.evaluate_post is declarations.Maybe.evaluate_post
    )


@dataclass(frozen=True, eq=False)
class Plan:
    """How to evaluate one factory's declarations for one shape of arguments."""

    factory: type[Factory[Any]]
    #: Every field in factory_boy's order: its constant, or ``_PENDING``.
    template: dict[str, Any]
    #: Fields whose value is the call's argument of that name.
    slots: tuple[str, ...]
    evaluators: dict[str, Evaluator]
    #: Params and ``Meta.exclude``: evaluated, never passed on.
    dropped: frozenset[str]
    rename: tuple[tuple[str, str], ...]
    guards: Guards

    def rows(self, count: int, overrides: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Yield ``count`` dicts of the model's keyword arguments; each takes one sequence
        number, as each object factory_boy builds does."""
        template = dict(self.template)
        for name in self.slots:
            template[name] = overrides[name]
        evaluators = self.evaluators
        order = tuple(evaluators.items())
        dropped, rename = self.dropped, self.rename
        next_sequence: Callable[[], int] = self.factory._meta.next_sequence
        for _ in range(count):
            sequence = next_sequence()
            values = template.copy()
            row = _Row(evaluators, values, sequence)
            for name, evaluate in order:
                if values[name] is _PENDING:
                    values[name] = _EVALUATING
                    values[name] = evaluate(row, sequence)
            kwargs = {k: v for k, v in values.items() if v is not _SKIP and k not in dropped}
            for old, new in rename:
                if old in kwargs:
                    kwargs[new] = kwargs.pop(old)
            yield kwargs


class _Compiler:
    """Read one factory's declarations with one call's arguments into a ``Plan``."""

    def __init__(
        self, factory: type[Factory[Any]], overrides: Mapping[str, Any], *, exact: bool
    ) -> None:
        self.factory = factory
        self.meta: Any = factory._meta  # FactoryOptions sets the Meta options dynamically
        self.overrides = overrides
        # exact: AsyncFactory's fast path; otherwise rows() for seeding, where foreign
        # keys stand in for SubFactories and errors name what to pass.
        self.exact = exact
        self.guards: dict[str, bool] = {}
        self.visiting: set[str] = set()
        self.declared: dict[str, Any] = {}
        self.slots: set[str] = set()
        self.relations = {} if exact else _foreign_keys(self.meta.model)

    def unsupported(self, message: str) -> Unsupported:
        prefix = "" if self.exact else "rows() "
        return Unsupported(prefix + message, tuple(self.guards.items()))

    def plan(self) -> Plan:
        meta = self.meta
        if "__sequence" in self.overrides:
            raise self.unsupported("cannot force the sequence (__sequence=)")
        custom_options = type(meta) is not FactoryOptions
        if self.exact and (custom_options or meta.abstract or meta.inline_args):
            # factory_boy's own errors and extension points: let it build.
            raise self.unsupported("leaves custom options, abstract factories and inline_args")
        if not self.exact:
            self._check_fields()
        pre, post = builder.parse_declarations(
            self.overrides, base_pre=meta.pre_declarations, base_post=meta.post_declarations
        )
        self.declared = pre.declarations
        nested = sorted(
            f"{root}__{sub}"
            for contexts in (pre.contexts, post.contexts)
            for root, context in contexts.items()
            for sub in context
        )
        if nested:
            raise self.unsupported(f"does not pass arguments on to declarations: {nested}")
        self.slots = {
            name
            for name, value in self.overrides.items()
            if not is_declaration(value) and self.declared.get(name, _NOTHING) is value
        }
        for name, decl in post.declarations.items():
            self._post(name, decl)
        template: dict[str, Any] = {}
        evaluators: dict[str, Evaluator] = {}
        for name, decl in self.declared.items():
            if name in self.slots:
                template[name] = None  # the argument, filled in by Plan.rows
                continue
            resolved = self._resolve(decl)
            if not is_declaration(resolved):
                template[name] = resolved
            elif not self._given_as_key(name, resolved):
                evaluators[name] = self._evaluator(name, resolved)
                template[name] = _PENDING
        return Plan(
            factory=self.factory,
            template=template,
            slots=tuple(name for name in self.declared if name in self.slots),
            evaluators=evaluators,
            dropped=frozenset(meta.exclude) | frozenset(meta.parameters),
            rename=tuple(meta.rename.items()),
            guards=tuple(self.guards.items()),
        )

    def _check_fields(self) -> None:
        model = self.meta.model
        known = set(self.meta.pre_declarations.as_dict()) | set(
            self.meta.post_declarations.as_dict()
        )
        known |= set(self.meta.parameters) | {attr.key for attr in inspect(model).column_attrs}
        unknown = set(self.overrides) - known
        if unknown:
            raise self.unsupported(f"got fields {sorted(unknown)} that {model.__name__} lacks")

    def _given_as_key(self, name: str, decl: Any) -> bool:
        """Return whether seeding gave the foreign key that stands in for ``decl``."""
        return (
            not self.exact
            and isinstance(decl, declarations.SubFactory | declarations.PostGenerationDeclaration)
            and bool(self.relations.get(name, set()) & set(self.overrides))
        )

    def _refuse_relation(self, name: str) -> Unsupported:
        if self.exact:
            return self.unsupported(f"does not build related objects ({name!r})")
        keys = sorted(self.relations.get(name, {name + "_id"}))
        return self.unsupported(
            f"does not build related objects: pass {' and '.join(keys)}= for {name!r}"
        )

    def _post(self, name: str, decl: Any) -> None:
        """Accept a post-generation declaration only when it does nothing: a Trait's or
        Maybe's hook whose condition is known to be false."""
        if _is_maybe(decl):
            choice = self._decide(decl)
            if choice is not None:
                target = decl.yes if choice else decl.no
                if enums.get_builder_phase(target) != enums.BuilderPhase.POST_INSTANTIATION:
                    return  # a flat value: nothing runs and the model never sees it
        if self._given_as_key(name, decl):
            return
        if isinstance(decl, declarations.RelatedFactory):
            raise self._refuse_relation(name)
        raise self.unsupported(f"does not run post-generation declarations ({name!r})")

    # --- Maybe conditions known before any row is built ---------------------------------

    def _decide(self, maybe: Any) -> bool | None:
        """Return which branch ``maybe`` takes for every row, or None when it depends on
        the row. Only a SelfAttribute condition on a constant, an argument (guarded), an
        undeclared field (its default) or another decided Maybe is decided."""
        decider = maybe.decider
        if not _evaluates_like(decider, declarations.SelfAttribute):
            return None
        name = decider.attribute_name
        if decider.depth > 1 or "." in name or name.startswith("_") or name == "factory_parent":
            return None
        try:
            self._context(decider)
        except Unsupported:
            return None
        if name in self.slots:
            truth = bool(self.overrides[name])
            self.guards[name] = truth
            return truth
        if name not in self.declared:
            try:
                return bool(declarations.deepgetattr(_NOTHING, name, decider.default))
            except AttributeError:
                return None  # no default: factory_boy raises, and so will the row
        if name in self.visiting:
            return None  # a cycle: the row raises it
        self.visiting.add(name)
        try:
            value = self._resolve(self.declared[name])
        finally:
            self.visiting.discard(name)
        return None if is_declaration(value) else bool(value)

    def _resolve(self, decl: Any) -> Any:
        """Return the branch a decided Maybe takes (repeatedly), else ``decl`` itself."""
        while _is_maybe(decl):
            choice = self._decide(decl)
            if choice is None:
                break
            decl = decl.yes if choice else decl.no
        return decl

    # --- evaluators ---------------------------------------------------------------------

    def _context(self, decl: Any) -> dict[str, Any]:
        """Return the arguments ``decl`` is evaluated with (its own, as factory_boy unrolls
        them), or refuse when they hold declarations."""
        try:
            context: dict[str, Any] = decl.unroll_context(None, _Probe(), {})
        except _Nested:
            raise self.unsupported(f"cannot evaluate declarations inside {decl!r}") from None
        return context

    def _branch(self, name: str, target: Any) -> Evaluator:
        if is_declaration(target):
            return self._evaluator(name, target)
        return lambda row, n: target

    def _evaluator(self, name: str, decl: Any) -> Evaluator:
        if enums.get_builder_phase(decl) != enums.BuilderPhase.ATTRIBUTE_RESOLUTION:
            raise self.unsupported(f"cannot evaluate {type(decl).__name__} for field {name!r}")
        if _is_maybe(decl):
            decl = self._resolve(decl)
            if not _is_maybe(decl):
                return self._branch(name, decl)
            decider = self._evaluator(name, decl.decider)
            yes, no = self._branch(name, decl.yes), self._branch(name, decl.no)
            return lambda row, n: (yes if decider(row, n) else no)(row, n)
        if isinstance(decl, declarations.SubFactory):
            raise self._refuse_relation(name)
        if _evaluates_like(decl, declarations.LazyFunction):
            self._context(decl)
            function = decl.function
            return lambda row, n: function()
        if _evaluates_like(decl, declarations.LazyAttributeSequence):
            self._context(decl)
            function = decl.function
            return lambda row, n: function(row, int(n))
        if _evaluates_like(decl, declarations.LazyAttribute):
            self._context(decl)
            function = decl.function
            return lambda row, n: function(row)
        if _evaluates_like(decl, declarations.Sequence):
            self._context(decl)
            function = decl.function
            return lambda row, n: function(int(n))
        if _evaluates_like(decl, declarations.SelfAttribute):
            self._context(decl)
            if decl.depth > 1:
                # Only inside a SubFactory is there a parent, and factory_boy builds those.
                raise self.unsupported(
                    f"cannot follow SelfAttribute({decl.attribute_name!r}) upwards"
                )
            attribute, default = decl.attribute_name, decl.default
            deepgetattr: Callable[..., Any] = declarations.deepgetattr
            return lambda row, n: deepgetattr(row, attribute, default)
        if _evaluates_like(decl, declarations.Iterator):
            self._context(decl)
            next_value = decl.evaluate
            return lambda row, n: next_value(row, None, {})
        if _evaluates_like(decl, fuzzy.BaseFuzzyAttribute):
            self._context(decl)
            fuzz = decl.fuzz
            return lambda row, n: fuzz()
        if _evaluates_like(decl, Faker):
            # Faker's own evaluation, with the arguments factory_boy unrolls for it: the
            # locale (None: the default at call time) and the provider's arguments.
            extra = self._context(decl)
            fake = decl.evaluate
            return lambda row, n: fake(row, None, dict(extra))
        raise self.unsupported(f"cannot evaluate {type(decl).__name__} for field {name!r}")


def _foreign_keys(model: type[Any]) -> dict[str, set[str]]:
    """Map each relationship of ``model`` to its foreign-key attribute names."""
    mapper = inspect(model)
    result: dict[str, set[str]] = {}
    for rel in mapper.relationships:
        keys = {mapper.get_property_by_column(col).key for col in rel.local_columns}
        result[rel.key] = keys
    return result


def compile_plan(
    factory: type[Factory[Any]], overrides: Mapping[str, Any], *, exact: bool = True
) -> Plan:
    """Return the plan of ``factory`` called with ``overrides``, or raise ``Unsupported``.

    The plan takes the values of the arguments that are not declarations from
    ``Plan.rows``: it serves every call with the same argument names that agrees with
    ``Plan.guards``. ``exact=False`` is seeding's variant (see ``rows``).
    """
    return _Compiler(factory, overrides, exact=exact).plan()


def rows(factory: type[Factory[Any]], count: int, **overrides: Any) -> Iterator[dict[str, Any]]:
    """Yield ``count`` dicts of field values built from ``factory``'s declarations.

    Traits and Params are passed like fields (``failed=True``) and apply to every row.
    Related objects are not built: pass the foreign key (``workflow_id=``) instead of
    the relation's SubFactory.
    """
    return compile_plan(factory, overrides, exact=False).rows(count, overrides)
