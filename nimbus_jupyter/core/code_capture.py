"""Find the code a pipeline's components need and ship it inside the bundle.

Components defined in notebook cells (``__main__``) have no file a Lambda could import, so their source
is captured from the cells, together with what it refers to: modules become imports, literals become
assignments, other notebook functions and classes are captured too. Components from a local ``.py``
file next to the notebook are copied. Anything else a component refers to in the notebook (a
DataFrame, an open file) cannot be shipped: that fails before anything starts, naming the component.
"""
from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import linecache
import shutil
import symtable
import sys
import sysconfig
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

from .errors import CodeCaptureError

NOTEBOOK_MODULE = "nimbus_notebook_code"
_INSTALLED_ROOTS = tuple(
    str(Path(p).resolve())
    for key in ("stdlib", "platstdlib", "purelib", "platlib")
    if (p := sysconfig.get_paths().get(key))
) + tuple(str(Path(p).resolve()) for p in sys.path if "site-packages" in p or "dist-packages" in p)


@dataclass
class CapturedCode:
    """What the bundle's ``code/`` directory will hold, and why."""

    notebook_source: str = ""
    local_modules: Dict[str, Path] = field(default_factory=dict)  # module name -> file or package dir
    captured: List[Dict[str, str]] = field(default_factory=list)  # {"component", "object", "from"}

    @property
    def modules(self) -> List[str]:
        return list(self.local_modules) + ([NOTEBOOK_MODULE] if self.notebook_source else [])

    def write(self, code_dir: Path) -> None:
        if not self.modules:
            return
        code_dir.mkdir(parents=True, exist_ok=True)
        for name, path in self.local_modules.items():
            if path.is_dir():
                shutil.copytree(path, code_dir / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copyfile(path, code_dir / f"{name}.py")
        if self.notebook_source:
            (code_dir / f"{NOTEBOOK_MODULE}.py").write_text(self.notebook_source, "utf-8")


def capture_pipeline_code(nlp: Any, namespace: Optional[Dict[str, Any]] = None) -> CapturedCode:
    """Collect the code of every component and registered function that is not installed."""
    main_ns = namespace if namespace is not None else vars(sys.modules["__main__"])
    capture = _Capture(main_ns)
    for component, obj in _component_objects(nlp):
        capture.add(component, obj)
    for ref, obj in _config_functions(nlp.config):
        capture.add(f"config {ref}", obj)
    return capture.result()


def _component_objects(nlp: Any) -> Iterator[Tuple[str, Any]]:
    from spacy.language import Language
    from spacy.util import registry

    for name in nlp.pipe_names:
        factory = nlp.get_pipe_meta(name).factory
        for internal in (nlp.get_factory_name(factory), Language.get_factory_name(factory)):
            if internal in registry.factories:
                yield name, registry.factories.get(internal)
                break
        pipe = nlp.get_pipe(name)
        yield name, pipe if isinstance(pipe, (types.FunctionType, types.MethodType)) else type(pipe)


def _config_functions(config: Any) -> Iterator[Tuple[str, Any]]:
    from spacy.util import registry

    stack = [config]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            if isinstance(key, str) and key.startswith("@") and isinstance(value, str):
                try:
                    yield f"{key} = {value!r}", registry.get(key[1:], value)
                except Exception:
                    continue  # spaCy itself reports unknown registered functions when it loads
            elif isinstance(value, dict):
                stack.append(value)


class _Capture:
    def __init__(self, namespace: Dict[str, Any]) -> None:
        self.ns = namespace
        self.imports: Dict[str, str] = {}  # alias -> import line
        self.literals: Dict[str, str] = {}
        self.definitions: Dict[int, Tuple[str, str]] = {}  # id(obj) -> (name, source)
        self.order: List[int] = []
        self.local_modules: Dict[str, Path] = {}
        self.captured: List[Dict[str, str]] = []
        self._seen: Set[int] = set()

    def add(self, component: str, obj: Any) -> None:
        obj = inspect.unwrap(obj) if callable(obj) else obj
        module = getattr(obj, "__module__", None)
        if module == "__main__":
            self._capture_definition(component, obj)
            self.captured.append({"component": component, "object": obj.__name__, "from": "notebook"})
        elif module and self._add_local_module(module):
            self.captured.append({"component": component, "object": getattr(obj, "__qualname__", str(obj)), "from": module})

    def result(self) -> CapturedCode:
        if not self.definitions:
            return CapturedCode(local_modules=self.local_modules, captured=self.captured)
        parts = ['"""Captured by nimbus_jupyter from notebook cells: the code the pipeline\'s components need."""']
        parts += sorted(set(self.imports.values()))
        parts += [f"{name} = {text}" for name, text in sorted(self.literals.items())]
        parts += [self.definitions[key][1] for key in self.order]
        return CapturedCode("\n\n".join(parts) + "\n", self.local_modules, self.captured)

    def _capture_definition(self, component: str, obj: Any) -> None:
        if id(obj) in self._seen:
            return
        self._seen.add(id(obj))
        source = _definition_source(component, obj)
        for name in sorted(_global_names(source)):
            self._resolve(component, obj.__name__, name)
        self.definitions[id(obj)] = (obj.__name__, source)
        self.order.append(id(obj))  # after its dependencies: class bases and decorators come first

    def _resolve(self, component: str, owner: str, name: str) -> None:
        if name not in self.ns:
            if hasattr(builtins, name):
                return
            return  # unbound in the notebook too: the kernel would fail the same way
        value = self.ns[name]
        if isinstance(value, types.ModuleType):
            self._import_module(name, value)
            return
        module = getattr(value, "__module__", None)
        if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)) and module == "__main__":
            self._capture_definition(component, value)
            return
        if module and module != "__main__" and isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
            qualname = getattr(value, "__qualname__", "")
            if "." not in qualname and getattr(_safe_import(module), qualname, None) is value:
                self._add_local_module(module)
                line = f"from {module} import {qualname}" + (f" as {name}" if name != qualname else "")
                self.imports[name] = line
                return
        if _is_literal(value):
            self.literals[name] = _literal_source(value)
            return
        raise CodeCaptureError(
            f"component {component!r} uses the notebook variable {name!r} (in {owner}), a "
            f"{type(value).__name__} that cannot be shipped with the pipeline",
            "make it a literal (numbers, strings, lists or dicts of them), pass it through the component's "
            "config, or save it with the component's to_disk/from_disk",
            where="capturing notebook code",
        )

    def _import_module(self, alias: str, module: types.ModuleType) -> None:
        real = module.__name__
        if real == "__main__":
            raise CodeCaptureError(f"a component refers to the notebook's own module as {alias!r}", "refer to names directly")
        self._add_local_module(real)
        self.imports[alias] = f"import {real}" if alias == real else f"import {real} as {alias}"

    def _add_local_module(self, module_name: str) -> bool:
        """Copy a module that is a file of the user's (not installed); return True if it was one."""
        top = module_name.split(".")[0]
        module = sys.modules.get(top)
        path = getattr(module, "__file__", None)
        if module is None or not path:
            return False
        path = Path(path).resolve()
        if any(str(path).startswith(root) for root in _INSTALLED_ROOTS):
            return False
        self.local_modules[top] = path.parent if path.name == "__init__.py" else path
        return True


def _definition_source(component: str, obj: Any) -> str:
    """The exact source of a function or class defined in a cell, decorators included."""
    filename, line = _code_location(obj)
    lines = linecache.getlines(filename) if filename else []
    if not lines:
        raise CodeCaptureError(
            f"the code of {obj.__name__!r} (used by component {component!r}) is not available from the notebook",
            "define it in a notebook cell or in a .py file next to the notebook, then build the pipeline again",
            where="capturing notebook code",
        )
    cell = "".join(lines)
    tree = ast.parse(cell)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == obj.__name__:
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            if start <= line <= node.end_lineno:
                return "".join(lines[start - 1: node.end_lineno]).rstrip() + "\n"
    raise CodeCaptureError(
        f"{obj.__name__!r} (used by component {component!r}) is not defined at the top level of a cell",
        "define the component at the top level of a cell (not inside a function or an if), then run that cell again",
        where="capturing notebook code",
    )


def _code_location(obj: Any) -> Tuple[Optional[str], int]:
    code = getattr(obj, "__code__", None)
    if code is not None:
        return code.co_filename, code.co_firstlineno
    if isinstance(obj, type):
        for member in vars(obj).values():
            member = getattr(member, "__func__", member)
            member = getattr(member, "fget", member)
            code = getattr(member, "__code__", None)
            if code is not None:
                return code.co_filename, code.co_firstlineno
    return None, 0


def _global_names(source: str) -> Set[str]:
    names: Set[str] = set()

    def walk(table: symtable.SymbolTable) -> None:
        for sym in table.get_symbols():
            if sym.is_global() and sym.is_referenced():
                names.add(sym.get_name())
        for child in table.get_children():
            walk(child)

    walk(symtable.symtable(source, "<cell>", "exec"))
    return names


def _safe_import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except Exception:
        return None


def _literal_source(value: Any) -> str:
    """``repr(value)``, but a set's items in sorted order: a set's repr follows the process's string
    hashing, and the captured code is part of the bundle's content hash."""
    if isinstance(value, (set, frozenset)) and value:
        items = ", ".join(sorted(_literal_source(v) for v in value))
        return "{" + items + "}" if isinstance(value, set) else "frozenset({" + items + "})"
    if isinstance(value, list):
        return "[" + ", ".join(_literal_source(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(_literal_source(v) for v in value)
        return "(" + inner + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal_source(k)}: {_literal_source(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _is_literal(value: Any) -> bool:
    try:
        return ast.literal_eval(repr(value)) == value
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
