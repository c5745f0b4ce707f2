"""What ``@step`` makes of a function, a coroutine function, a generator function or
an async generator function (see :func:`otel_tracker.step`).

A generator's work happens while it is iterated, not when it is called, so a
generator step lasts from the first ``next()`` to exhaustion, an exception or
``close()`` (a consumer that stops early ends it ``completed``). The step is the
process's for all that time, and this thread's or task's ``current_step()`` only
while the generator's own code runs: between items the consumer's code runs, with
its own current step.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any

from . import current

if TYPE_CHECKING:
    from .step import Step


def step_function(func: Callable[..., Any], name: str, options: Mapping[str, Any]) -> Any:
    """``func`` run as the step ``name`` of the current run (``options``: those of
    :meth:`Run.step`); outside a run it simply runs."""
    if inspect.isasyncgenfunction(func):
        return _async_generator(func, name, options)
    if inspect.isgeneratorfunction(func):
        return _generator(func, name, options)
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def coroutine(*args: Any, **kw: Any) -> Any:
            run = current.active("run")
            if run is None:
                return await func(*args, **kw)
            with run.step(name, **options):
                return await func(*args, **kw)

        return coroutine

    @functools.wraps(func)
    def plain(*args: Any, **kw: Any) -> Any:
        run = current.active("run")
        if run is None:
            return func(*args, **kw)
        with run.step(name, **options):
            return func(*args, **kw)

    return plain


class _Lifetime:
    """A generator's step: started at its first item, ended with the generator, and
    current for this task or thread while the generator's own code runs (``with``
    around each resumption; a generator is never resumed twice at once)."""

    def __init__(self, handle: Step) -> None:
        self.handle = handle
        self.attach = handle._attaches()  # asked once: it reads the environment
        self.error: BaseException | None = None
        self._token: Any = None

    @classmethod
    def begin(cls, name: str, options: Mapping[str, Any]) -> _Lifetime | None:
        """The started step of the current run (``None`` outside a run)."""
        run = current.active("run")
        if run is None:
            return None
        handle: Step = run.step(name, **options)
        handle.start()
        current.enter_process("step", handle)
        return cls(handle)

    def __enter__(self) -> None:
        # per item: the plain thread/task part unless OpenTelemetry's context is wanted too
        if self.attach:
            self._token = self.handle._activate(True)
        else:
            self._token = current.enter_local("step", self.handle)

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self.attach:
            self.handle._deactivate(self._token)
        else:
            current.leave_local("step", self.handle, self._token)
        if exc is not None and not isinstance(exc, (StopIteration, StopAsyncIteration)):
            self.error = exc  # the generator raised: its step failed

    def end(self) -> None:
        current.leave_process("step", self.handle)
        self.handle.end(self.error)


def _generator(func: Callable[..., Generator[Any, Any, Any]], name: str, options: Any) -> Any:
    @functools.wraps(func)
    def generator(*args: Any, **kw: Any) -> Generator[Any, Any, Any]:
        inner = func(*args, **kw)
        life = _Lifetime.begin(name, options)
        if life is None:
            return (yield from inner)
        resume: Callable[[Any], Any] = inner.send
        value: Any = None
        try:
            while True:
                try:
                    with life:
                        item = resume(value)
                except StopIteration as stop:
                    return stop.value
                try:
                    value, resume = (yield item), inner.send
                except GeneratorExit:  # closed by its consumer: the cleanup is the step's
                    with life:
                        inner.close()
                    raise
                except BaseException as exc:  # thrown in by the consumer: the generator's to handle
                    value, resume = exc, inner.throw
        finally:
            life.end()

    return generator


def _async_generator(func: Callable[..., AsyncGenerator[Any, Any]], name: str, options: Any) -> Any:
    @functools.wraps(func)
    async def generator(*args: Any, **kw: Any) -> AsyncGenerator[Any, Any]:
        inner = func(*args, **kw)
        life = _Lifetime.begin(name, options)
        current_while = life or contextlib.nullcontext()
        resume: Callable[[Any], Any] = inner.asend
        value: Any = None
        try:
            while True:
                try:
                    with current_while:
                        item = await resume(value)
                except StopAsyncIteration:
                    return
                try:
                    value, resume = (yield item), inner.asend
                except GeneratorExit:
                    with current_while:
                        await inner.aclose()
                    raise
                except BaseException as exc:  # thrown in by the consumer: the generator's to handle
                    value, resume = exc, inner.athrow
        finally:
            if life is not None:
                life.end()

    return generator
