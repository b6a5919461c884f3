"""The tasks this build has: one ``models/<task>/task.py`` declaring ``TASK = TaskSpec(...)``.

Discovery imports only those small declaration modules; a task whose declaration or adapter
fails to import is listed with the reason (``osteoview tasks``) instead of silently vanishing.
Tests add fake tasks with ``register``.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from app.engine.adapter import Adapter, slot_mismatch
from app.engine.task import TaskSpec
from app.study.model import Series

# Fake or plug-in tasks registered at run time (tests), by id; they come after the built-in ones.
_REGISTERED: dict[str, TaskSpec] = {}


class UnknownTask(Exception):
    pass


class PhantomUnavailable(Exception):
    """The task has no phantom generator, or it does not import; the message says why."""


@dataclass(frozen=True)
class TaskEntry:
    """A task as discovered: its spec, or why its declaration could not be read."""

    package: str  # models.<package>
    spec: TaskSpec | None
    error: str = ""

    @property
    def id(self) -> str:
        return self.spec.id if self.spec else self.package


@lru_cache(maxsize=1)
def _discovered() -> tuple[TaskEntry, ...]:
    import models

    entries = []
    for info in sorted(pkgutil.iter_modules(models.__path__), key=lambda i: i.name):
        if not info.ispkg or info.name == "common":
            continue
        name = f"models.{info.name}.task"
        if importlib.util.find_spec(name) is None:
            continue  # a helper package, not a task
        try:
            module = importlib.import_module(name)
            spec = module.TASK
            if not isinstance(spec, TaskSpec):
                raise TypeError(f"{name}.TASK is not a TaskSpec")
        except Exception as exc:  # noqa: BLE001 - one broken task must not hide the others
            entries.append(TaskEntry(info.name, None, f"{type(exc).__name__}: {exc}"))
            continue
        entries.append(TaskEntry(info.name, spec))
    return tuple(entries)


def all_entries() -> list[TaskEntry]:
    return [*_discovered(), *(TaskEntry("registered", s) for s in _REGISTERED.values())]


def task_specs() -> list[TaskSpec]:
    """Every task whose declaration reads, built-in first."""
    return [e.spec for e in all_entries() if e.spec is not None]


def task_ids() -> list[str]:
    return [s.id for s in task_specs()]


def get_spec(task_id: str) -> TaskSpec:
    for spec in task_specs():
        if spec.id == task_id:
            return spec
    raise UnknownTask(f"unknown task '{task_id}'; known tasks: {', '.join(task_ids())}")


def register(spec: TaskSpec) -> None:
    _REGISTERED[spec.id] = spec


def unregister(task_id: str) -> None:
    _REGISTERED.pop(task_id, None)


def _import_attr(path: str):
    module_name, _, attr = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


def adapter_class(task_id: str) -> type[Adapter]:
    spec = get_spec(task_id)
    try:
        return _import_attr(spec.adapter)
    except (ImportError, AttributeError) as exc:
        raise UnknownTask(f"task '{task_id}' is not available in this build ({exc})") from exc


def adapter_error(task_id: str) -> str:
    """Why the task cannot run (its adapter does not import, or its weights are not there), or
    "" when it can."""
    try:
        cls = adapter_class(task_id)
    except UnknownTask as exc:
        return str(exc)
    weights = getattr(cls, "default_weights_dir", None)
    if weights is not None and not (Path(weights) / "manifest.json").is_file():
        return f"task '{task_id}' has no weights yet ({Path(weights) / 'manifest.json'} is missing)"
    return ""


def available_tasks() -> list[str]:
    """Tasks whose adapter imports (those whose model has landed)."""
    return [t for t in task_ids() if not adapter_error(t)]


def get_adapter(task_id: str) -> Adapter:
    return adapter_class(task_id)()


def phantom_module(task_id: str) -> ModuleType:
    spec = get_spec(task_id)
    if not spec.phantom:
        raise PhantomUnavailable(f"{task_id}: declares no phantom generator")
    try:
        module = _import_attr(spec.phantom)
    except ImportError as exc:
        raise PhantomUnavailable(
            f"{task_id}: phantom module {spec.phantom} is not available ({exc})"
        ) from exc
    for fn in ("generate", "write_study", "write_demo"):
        if not callable(getattr(module, fn, None)):
            raise PhantomUnavailable(f"{task_id}: {spec.phantom} has no {fn}()")
    return module


def tasks_accepting(series: Series) -> list[str]:
    """Available tasks one of whose required slots this series can fill (metadata only)."""
    out = []
    for task_id in available_tasks():
        spec = get_spec(task_id)
        if any(slot_mismatch(s, series) is None for s in spec.required_slots if not s.is_mask):
            out.append(task_id)
    return out
