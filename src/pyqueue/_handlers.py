"""What a handler is, in types and at run time: its kind, and the model its job carries.

Two kinds, told apart by the type checker and by the worker alike:

* ``async def handler(job: Job[Model]) -> ...`` runs on the worker's event loop;
* ``def handler(job: JobHandle[Model]) -> ...`` runs in a thread (or, sandboxed, in a
  child process); its result must be something JSON (or a pydantic model) can carry,
  which a coroutine is not: so an ``async def`` taking a ``JobHandle`` is rejected.

When no model is given, the handler's annotation names it: a handler whose first
parameter is ``Job[Email]`` or ``JobHandle[Email]`` (``Email`` a pydantic model) gets
each job's data validated into an ``Email``, under ``Worker`` and ``pyqueue worker``
alike.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeAlias

from pydantic import BaseModel
from typing_extensions import TypeVar

from pyqueue.errors import InvalidOptionsError
from pyqueue.handle import JobHandle
from pyqueue.job import Job

DataT = TypeVar("DataT", default=Any)

# What a plain ``def`` handler may return: what the result's JSON can hold.
SyncResult: TypeAlias = (
    bool | int | float | str | Sequence[Any] | Mapping[str, Any] | BaseModel | None
)
AsyncHandler: TypeAlias = Callable[[Job[DataT]], Awaitable[Any]]
SyncHandler: TypeAlias = Callable[[JobHandle[DataT]], SyncResult]
Handler: TypeAlias = AsyncHandler[DataT] | SyncHandler[DataT]
# One handler for every job name, or ``{job name: handler}`` with ``"*"`` as fallback.
Processor: TypeAlias = Handler[DataT] | Mapping[str, Handler[DataT]]


def describe(handler: object) -> str:
    """A handler's name for messages: ``module.function``."""
    target = handler.func if isinstance(handler, functools.partial) else handler
    name = getattr(target, "__qualname__", None) or type(target).__name__
    module = getattr(target, "__module__", None)
    return f"{module}.{name}" if module else str(name)


def _globals_of(handler: object) -> dict[str, Any]:
    target: Any = handler
    while isinstance(target, functools.partial):
        target = target.func
    target = inspect.unwrap(getattr(target, "__func__", target))
    if not inspect.isfunction(target):
        target = getattr(type(target), "__call__", target)  # noqa: B004 - callable objects
        target = getattr(target, "__func__", target)
    found = getattr(target, "__globals__", None)
    return found if isinstance(found, dict) else {}


def _job_annotation(handler: Callable[..., Any]) -> object:
    """The annotation of the handler's job parameter (its first), or ``None``."""
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        return None
    params = [p for p in signature.parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not params or params[0].annotation is inspect.Parameter.empty:
        return None
    annotation = params[0].annotation
    if isinstance(annotation, str):
        try:
            # The handler module's names, as typing.get_type_hints resolves them.
            annotation = eval(annotation, _globals_of(handler))
        except Exception as exc:
            raise InvalidOptionsError(
                f"handler {describe(handler)}: cannot resolve its job annotation "
                f"{params[0].annotation!r} at run time ({type(exc).__name__}: {exc}); "
                "import its model outside `if TYPE_CHECKING:`, or pass model=..."
            ) from None
    return annotation


def model_of(handler: Callable[..., Any]) -> type[BaseModel] | None:
    """The pydantic model a handler's annotation names (``Job[Email]``), else None.

    Raises:
        InvalidOptionsError: the annotation is a string that does not resolve (a
            model imported only for the type checker).
    """
    annotation = _job_annotation(handler)
    if typing.get_origin(annotation) not in (Job, JobHandle):
        return None
    args = typing.get_args(annotation)
    if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0]
    return None


def models_of(
    handlers: Mapping[str, Callable[..., Any]],
) -> dict[str, type[BaseModel] | None]:
    """:func:`model_of` for each entry of a ``{job name: handler}`` table."""
    return {name: model_of(handler) for name, handler in handlers.items()}


def resolve_models(
    handlers: Mapping[str, Any], model: type[Any] | None, queue_model: type[Any] | None,
) -> dict[int, type[BaseModel] | None]:
    """The model each handler's data is validated into, by handler id.

    A handler's annotation (``Job[Email]``) names what it takes; ``model`` (else the
    queue's) is what the jobs hold. Either alone is used; both must agree (the
    jobs' model is the annotation's, or a subclass of it).

    Raises:
        InvalidOptionsError: they disagree, or ``model`` is not a pydantic model.
    """
    given = model if model is not None else queue_model
    source = "model" if model is not None else "the queue's model"
    if model is not None and not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise InvalidOptionsError(f"model: must be a pydantic BaseModel class, got {model!r}")
    found: dict[int, type[BaseModel] | None] = {}
    for name, expected in models_of(handlers).items():
        handler = handlers[name]
        if given is not None and expected is not None and not issubclass(given, expected):
            raise InvalidOptionsError(
                f"model: {source} {given.__name__} is not the {expected.__name__} that "
                f"handler {describe(handler)} takes (Job[{expected.__name__}])"
            )
        found[id(handler)] = given if given is not None else expected
    return found
