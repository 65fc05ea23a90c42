"""The one registry of targets: spaCy's ``catalogue`` with entry points, group ``nimbus_jupyter.targets``.

nimbus-jupyter declares its own two there (``pyproject.toml``)::

    [project.entry-points."nimbus_jupyter.targets"]
    local = "nimbus_jupyter.targets.local:LocalTarget"
    aws = "nimbus_jupyter.targets.aws:AwsTarget"

and another package adds a target the same way, without touching this one; code in a notebook can
also call ``register_target("name", TargetClass)``. Each target is checked when it is loaded: one that
fails to import, or declares a bad option, is left out with one ``TargetPluginWarning`` naming it and
the fix, and every other target keeps working. The api asks for targets by name (``get_target``) and
never imports one.
"""
from __future__ import annotations

import sys
import threading
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Dict, List, Mapping, Optional, Tuple

import catalogue

from ..core.errors import UserInputError
from .base import TargetOption, declaration_problems

GROUP = "nimbus_jupyter.targets"
DEFAULT_TARGET = "local"


class TargetPluginWarning(UserWarning):
    """A target could not be loaded; the others work."""


class _Catalogue(catalogue.Registry):
    """catalogue's registry, reading the entry points afresh (catalogue reads them once, at its import:
    a plugin installed later in the same process would stay unseen)."""

    def _get_entry_points(self) -> List[metadata.EntryPoint]:
        return list(metadata.entry_points(group=self.entry_point_namespace))


_TARGETS = _Catalogue((GROUP,), entry_points=True)


def register_target(name: str, target_class: Any = None) -> Any:
    """Register a target class under ``name`` in this process (a decorator without ``target_class``)."""
    return _TARGETS.register(name, func=target_class) if target_class is not None else _TARGETS.register(name)


@dataclass(frozen=True)
class TargetProblem:
    name: str
    source: str  # the entry point ("module:Class") or "registered in this process"
    what: str
    todo: str

    def text(self) -> str:
        return f"the target plugin {self.name!r} ({self.source}) {self.what}; {self.todo}"


@dataclass
class Catalog:
    """The targets that loaded (by name, ``local`` first) and the ones that did not."""

    classes: Dict[str, Any] = field(default_factory=dict)
    problems: Dict[str, TargetProblem] = field(default_factory=dict)
    generation: int = 0  # a new number each time the targets are loaded again


_cache: Dict[str, Any] = {}
_cache_lock = threading.RLock()


def catalog() -> Catalog:
    """Every target, loaded and checked (again whenever ``sys.path`` or the registrations change; each
    load warns once per target that could not be loaded)."""
    with _cache_lock:  # statuses are probed from several threads at once: one load, one warning
        in_process = {k: v for k, v in catalogue.REGISTRY.items() if k[:1] == (GROUP,)}
        key = (tuple(sys.path), tuple(sorted((k[-1], id(v)) for k, v in in_process.items())))
        if _cache.get("key") != key:
            loaded = _load(in_process)
            loaded.generation = _cache.get("generation", 0) + 1
            _cache["key"], _cache["catalog"], _cache["generation"] = key, loaded, loaded.generation
            for problem in loaded.problems.values():  # once per load, not on every look
                warnings.warn(problem.text(), TargetPluginWarning, stacklevel=3)
        return _cache["catalog"]


def _load(in_process: Mapping[Tuple[str, ...], Any]) -> Catalog:
    found = Catalog()
    candidates: List[Tuple[str, str, Any]] = []
    for entry in sorted(_TARGETS._get_entry_points(), key=lambda e: (e.name != DEFAULT_TARGET, e.name)):
        dist = getattr(entry, "dist", None)
        uninstall = f"pip uninstall {dist.name}" if dist is not None else "uninstall the package that declares it"
        try:
            loaded = entry.load()
        except Exception as exc:  # a broken plugin must not break the others
            found.problems[entry.name] = TargetProblem(
                entry.name, entry.value, f"failed to import: {type(exc).__name__}: {exc}",
                f"fix or reinstall it, or remove it ({uninstall}); the other targets work meanwhile")
            continue
        candidates.append((entry.name, entry.value, (loaded, uninstall)))
    for key, value in sorted(in_process.items(), key=lambda kv: kv[0][-1]):
        candidates.append((key[-1], "registered in this process", (value, "unregister it")))
    declared: Dict[str, Tuple[str, TargetOption]] = {}
    for name, source, (target_class, uninstall) in candidates:
        problems = declaration_problems(target_class, name)
        if not problems:
            problems = _clashes(target_class, name, declared)
        if problems:
            found.problems[name] = TargetProblem(name, source, "is not usable: " + "; ".join(problems),
                                                 f"fix its declaration (see nimbus_jupyter.targets.base), or remove "
                                                 f"it ({uninstall}); the other targets work meanwhile")
            continue
        found.classes[name] = target_class
        found.problems.pop(name, None)
        for option in target_class.options:
            declared.setdefault(option.name, (name, option))
    return found


def _clashes(target_class: Any, name: str, declared: Dict[str, Tuple[str, TargetOption]]) -> List[str]:
    """Options that another target declares differently: one flag must mean one thing in %nimbus_deploy."""
    found = []
    flags = {option.flag: (owner, option) for owner, option in declared.values()}
    for option in target_class.options:
        other = declared.get(option.name) or flags.get(option.flag)
        if other and (other[1].type, other[1].flag, other[1].name) != (option.type, option.flag, option.name):
            found.append(f"declares the option {option.name!r} ({option.flag}, {option.type}), which the {other[0]} "
                         f"target declares as {other[1].name!r} ({other[1].flag}, {other[1].type})")
    return found


def target_names() -> List[str]:
    return list(catalog().classes)


def target_class(name: str) -> Any:
    """The class of target ``name``; a UserInputError names the known ones (or why ``name`` did not load)."""
    found = catalog()
    if name in found.classes:
        return found.classes[name]
    if name in found.problems:
        problem = found.problems[name]
        raise UserInputError(f"the target {name!r} could not be loaded: it {problem.what}", problem.todo)
    known = ", ".join(found.classes) or "none (nimbus-jupyter's entry points are missing: reinstall it)"
    raise UserInputError(f"unknown target {name!r}", f"use one of: {known}")


def get_target(name: str, registry: Optional[Any] = None) -> Any:
    """The target ``name``, built over ``registry`` (default: the one under $NIMBUS_HOME)."""
    from ..core.registry import Registry

    return target_class(name)(registry if registry is not None else Registry())


def stages_of(name: str) -> Tuple[str, ...]:
    """The deploy stages a target reports, for views built before the deploy starts."""
    return tuple(target_class(name).stages)


def check_options(name: str, given: Mapping[str, Any]) -> Dict[str, Any]:
    """Every option of target ``name``: the given value checked, else the declared default (often None).

    An option that belongs to another target, or to none, is a UserInputError that says which.
    """
    cls = target_class(name)
    mine = {option.name: option for option in cls.options}
    given = {k: v for k, v in given.items() if v is not None}
    strangers = sorted(k for k in given if k not in mine)
    if strangers:
        owners = {option.name: other for other, c in catalog().classes.items() if other != name for option in c.options}
        elsewhere = [k for k in strangers if k in owners]
        if elsewhere:
            targets = sorted({owners[k] for k in elsewhere})
            raise UserInputError(f"{', '.join(elsewhere)}: option(s) of the {' and '.join(targets)} target, not of {name}",
                                 f"add --target {targets[0]}, or drop them")
        raise UserInputError(f"unknown option(s) for the {name} target: {', '.join(strangers)}",
                             f"the options are: {', '.join(sorted(mine)) or 'none'}")
    return {key: option.check(given[key], name) if key in given else option.default for key, option in mine.items()}
