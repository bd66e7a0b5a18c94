"""Refusing NVlabs persistence records whose module source would run code when imported.

`edmctl` never executes `module_src`, but a record whose source would run anything on import (a top-level call,
a decorator or default value that calls something, a class that defines `__setstate__` or `__reduce__`) is not
what NVlabs/edm writes and is how a planted pickle would attack `pickle.load`: such a file is refused. What
NVlabs's modules contain at import time is only this: a docstring, imports of torch/numpy/NVlabs helpers,
literal constants, and function and class definitions decorated by name, whose defaults are literals,
`dict(...)` of literals or `float('inf')`. The check parses the source (`ast.parse`; parsing runs nothing).
"""

import ast
import functools

from edmctl.errors import UserError

IMPORT_ROOTS = {"numpy", "torch", "torch_utils", "dnnlib", "math", "copy", "typing"}
DEFAULT_CALLS = {"dict", "float"}
# Special methods that unpickling, attribute access or garbage collection would call (NVlabs defines none of them).
RUN_ON_LOAD = {"__new__", "__setstate__", "__getstate__", "__reduce__", "__reduce_ex__", "__del__", "__getattr__",
               "__getattribute__", "__setattr__", "__delattr__", "__init_subclass__", "__set_name__",
               "__class_getitem__", "__hash__", "__eq__", "__instancecheck__", "__subclasscheck__",
               "__mro_entries__", "__prepare__"}


def _literal(node) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _dotted(node) -> bool:
    """`name` or `a.b.c`: a reference, not a call."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)


def _safe_default(node) -> bool:
    if node is None or _literal(node) or _dotted(node):
        return True
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in DEFAULT_CALLS
            and all(_literal(a) for a in node.args) and all(_literal(k.value) for k in node.keywords))


def _function_runs_nothing(node: ast.FunctionDef) -> str | None:
    """Why defining this function would run code, or None."""
    if not all(_dotted(d) for d in node.decorator_list):
        return "a decorator that is a call"
    args = node.args
    if not all(_safe_default(d) for d in [*args.defaults, *args.kw_defaults]):
        return "a default value that is a call"
    if node.name in RUN_ON_LOAD:
        return f"special method {node.name}"
    return None


def _class_runs_nothing(node: ast.ClassDef) -> str | None:
    if node.keywords or not all(_dotted(b) for b in node.bases) or not all(_dotted(d) for d in node.decorator_list):
        return "a class header that calls something"
    for item in node.body:
        reason = _statement_runs_nothing(item, in_class=True)
        if reason:
            return reason
    return None


def _statement_runs_nothing(node, in_class: bool = False) -> str | None:
    """Why executing this top-level (or class-body) statement would run code, or None."""
    if isinstance(node, ast.Pass) or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                                      and isinstance(node.value.value, str)):
        return None
    if isinstance(node, (ast.Import, ast.ImportFrom)) and not in_class:
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        ok = (getattr(node, "level", 0) or 0) == 0 and all(n.split(".")[0] in IMPORT_ROOTS for n in names)
        return None if ok else "an import of a module NVlabs/edm does not use"
    if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets) and _literal(node.value):
        return None
    if isinstance(node, ast.FunctionDef):
        return _function_runs_nothing(node)
    if isinstance(node, ast.ClassDef):
        return _class_runs_nothing(node)
    return "a statement"


@functools.lru_cache(maxsize=16)
def _module_problem(source: str) -> str | None:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        return f"unparsable source ({type(e).__name__})"
    for node in tree.body:
        reason = _statement_runs_nothing(node)
        if reason:
            return f"{reason} at line {node.lineno}: {ast.get_source_segment(source, node, padded=False)[:80]!r}"
    return None


def check_module_source(source: str, class_name: str) -> None:
    """UserError unless `source` only defines things when imported, and defines class `class_name`."""
    problem = _module_problem(source)
    if problem is None and class_name not in _class_names(source):
        problem = f"no class {class_name} defined in it"
    if problem:
        raise UserError(f"the module source embedded for class {class_name} would run code when imported ({problem}); "
                        f"it was not run and the file is refused.")


@functools.lru_cache(maxsize=16)
def _class_names(source: str) -> frozenset[str]:
    return frozenset(node.name for node in ast.parse(source).body if isinstance(node, ast.ClassDef))
