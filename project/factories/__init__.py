"""Async factories on factory_boy.

``await F.create(**kw)`` and ``await F.create_batch(n, **kw)`` build the objects (related
objects from SubFactories included) without IO, add them to the current session and flush
once, so the ORM inserts each table in dependency order and in batches. A factory never
commits or closes: the caller's transaction, or the test's, stays in charge.

The session is the test's ``db_session`` inside tests and the shell's ``session`` in
``manage.py shell``; elsewhere (a script, a task) wrap the calls in ``use_session(session)``
or pass ``_session=session``.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from factory.base import Factory
from factory.declarations import LazyFunction, Trait

from project.db import current_session, use_session

__all__ = ["AsyncFactory", "current_session", "use_session"]

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from project.factories import rows as factory_rows

M = TypeVar("M")


class AsyncFactory(Factory[M], Generic[M]):
    """The base of every model factory."""

    class Meta:
        abstract = True

    class Params:
        soft_deleted = Trait(deleted_at=LazyFunction(lambda: datetime.now(UTC)))

    @classmethod
    def build(cls, **kwargs: Any) -> M:
        """Return an unsaved object; no database is touched."""
        plan = _direct_plan(cls, kwargs)
        if plan is None:
            built: M = super().build(**kwargs)
            return built
        (values,) = plan.rows(1, kwargs)
        return cls._meta.model(**values)  # type: ignore[no-any-return]

    @classmethod
    def build_batch(cls, size: int, **kwargs: Any) -> list[M]:
        """Return ``size`` unsaved objects.

        When factory_boy would only evaluate declarations that ``project.factories.rows``
        reproduces exactly (no SubFactory, no post-generation hook that runs, no custom
        hook), they are evaluated directly, with the same values and sequence numbers:
        ``ToolFactory.build`` takes 22 us an object against factory_boy's 72 us, and most of
        what is left is Faker's. Otherwise factory_boy builds.
        """
        plan = _direct_plan(cls, kwargs)
        if plan is None:
            built: list[M] = []
            for _ in range(size):
                built.append(super().build(**kwargs))
            return built
        model = cls._meta.model
        return [model(**values) for values in plan.rows(size, kwargs)]

    @classmethod
    async def create(cls, _session: AsyncSession | None = None, **kwargs: Any) -> M:  # type: ignore[override]
        """Build an object, add it with its related objects, and flush."""
        (instance,) = await cls.create_batch(1, _session=_session, **kwargs)
        return instance

    @classmethod
    async def create_batch(  # type: ignore[override]
        cls, size: int, _session: AsyncSession | None = None, **kwargs: Any
    ) -> list[M]:
        """Build ``size`` objects and insert them in one flush (batched INSERTs).

        As in factory_boy's ``create``, post-generation hooks are told ``create=True``, and
        every object a SubFactory or RelatedFactory creates is added too.
        """
        session = _session if _session is not None else current_session()
        plan = _direct_plan(cls, kwargs)
        if plan is not None:
            model = cls._meta.model
            instances: list[M] = [model(**values) for values in plan.rows(size, kwargs)]
            session.add_all(instances)
        else:
            created: list[Any] = []
            token = _created.set(created)
            try:
                instances = []
                for _ in range(size):
                    # factory_boy's create strategy: hooks see create=True.
                    instances.append(super().create(**kwargs))
            finally:
                _created.reset(token)
            session.add_all(created)
        await session.flush()
        return instances

    @classmethod
    def _create(cls, model_class: type[Any], *args: Any, **kwargs: Any) -> Any:
        """Instantiate like factory_boy; ``create_batch`` adds what this made to the session."""
        instance = model_class(*args, **kwargs)
        created = _created.get()
        if created is not None:
            created.append(instance)
        return instance


#: What factory_boy's create strategy instantiates during ``create_batch``.
_created: ContextVar[list[Any] | None] = ContextVar("factory_created", default=None)
_FACTORY_HOOKS = ("_generate", "_build", "_create", "_adjust_kwargs", "_after_postgeneration")
_Entries = list[tuple["factory_rows.Guards", "factory_rows.Plan | None"]]
_plans: dict[tuple[Any, ...], _Entries] = {}


def _direct_plan(
    factory: type[AsyncFactory[Any]], kwargs: dict[str, Any]
) -> factory_rows.Plan | None:
    """Return the direct evaluation of ``factory`` called with ``kwargs``, or None if
    factory_boy must build.

    Verdicts are cached per factory and argument names (a test suite calls the same factory
    the same way many times), and per the truthiness of the arguments a Trait or Maybe
    depends on; a call that passes a declaration is compiled afresh.
    """
    from project.factories import rows as factory_rows

    if any(factory_rows.is_declaration(value) for value in kwargs.values()):
        return _compile(factory, kwargs)[1]
    entries = _plans.setdefault((factory, *kwargs), [])
    for guards, plan in entries:
        if all(bool(kwargs[name]) is truth for name, truth in guards):
            return plan
    guards, plan = _compile(factory, kwargs)
    entries.append((guards, plan))
    return plan


def _compile(
    factory: type[AsyncFactory[Any]], kwargs: dict[str, Any]
) -> tuple[factory_rows.Guards, factory_rows.Plan | None]:
    from project.factories import rows as factory_rows

    for hook in _FACTORY_HOOKS:
        own = getattr(getattr(factory, hook), "__func__", None)
        if own is not getattr(AsyncFactory, hook).__func__:
            return (), None  # a custom hook: only factory_boy calls it
    try:
        plan = factory_rows.compile_plan(factory, kwargs)
    except factory_rows.Unsupported as refused:
        return refused.guards, None
    return plan.guards, plan
