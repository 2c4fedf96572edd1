"""Untrusted reward code: compiled by RestrictedPython under a stricter policy, run with minimal globals.

Reward functions come from whoever can reach the server, so their source is treated as hostile. What stops
what, and where:

At compile time (:class:`RewardPolicy`, a RestrictedPython ``RestrictingNodeTransformer``), with the line:

- every name or attribute that starts with ``_`` (``__class__``, ``__import__``, ``__builtins__``,
  ``__traceback__``, ...), and the attributes that lead to frames, code and tracebacks without an
  underscore (``gi_frame``, ``gi_code``, ``f_globals``, ``f_back``, ``tb_frame``, ``cr_frame``, ...);
- ``.format``/``.format_map`` (``"{0.__class__}".format(x)`` reads attributes by name: f-strings do the
  same job and their expressions are checked like any other code) and ``.mro`` (reaches ``object``);
- ``eval``/``exec``, class definitions, ``async``, ``nonlocal``, ``except*``, ``match``;
- imports of anything but :data:`ALLOWED_MODULES`;
- the Python built-ins that are not offered (``open``, ``getattr``, ``type``, ``globals``, ``compile``,
  ``BaseException``, ...), unless the code defines that name itself;
- ``break``/``continue``/``return`` directly in a ``finally:`` block (they would swallow the time-out that
  ends a runaway call), and a bare ``except:`` is read as ``except Exception:`` for the same reason;
- ``yield`` inside a ``try`` or ``with`` statement. A generator kept past the call (in ``params``, in a
  module-level list) is closed when it is collected, which may be at any moment after the call, in the
  server's own code and outside every limit; closing runs the ``finally:`` blocks (and the ``except``
  clauses' expressions) around its ``yield``. Without them, closing a reward's generator runs none of its
  code: nothing the user wrote runs after a call returns (finalizers, the class of issue 14).

At run time (:func:`new_namespace`): the only built-ins are :data:`SAFE_BUILTINS`; ``import`` hands out a
read-only namespace per allowed module holding only its public non-module members (never the module,
whose attributes lead to ``sys`` and ``os``); ``print`` writes nowhere; attribute writes work only on
dicts and lists. Every attribute name in the code is a constant checked above and no built-in reads
attributes by a computed name (``getattr``, ``vars``, ``str.format`` are all refused), so reading
``value.name`` needs no run-time guard, nor does ``value[key]`` (there is no object whose items are
private), nor unpacking or ``n += 1``: the policy keeps those reads native after checking them, and the
sandbox costs a reward call nothing measurable. Writes (``x.a = 1``, ``x[k] = 1``) keep their guard.

Resource limits (CPU time, memory) are not this module's business: see
:mod:`rewards_api.runs.reward_limits`.
"""

from __future__ import annotations

import ast
import builtins
import math
import operator
import random
import re
import statistics
import types
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from RestrictedPython.Guards import full_write_guard
from RestrictedPython.transformer import RestrictingNodeTransformer

__all__ = [
    "ALLOWED_MODULES",
    "SAFE_BUILTINS",
    "RefusedCode",
    "RewardPolicy",
    "compile_restricted_source",
    "new_namespace",
]

ALLOWED_MODULES: tuple[str, ...] = ("math", "random", "statistics")
"""Modules a reward function may import (each as a read-only namespace of its public functions)."""

_SAFE_NAMES = (
    "abs", "all", "any", "bool", "callable", "chr", "complex", "dict", "divmod", "enumerate", "filter",
    "float", "frozenset", "int", "isinstance", "iter", "len", "list", "map", "max", "min", "next", "ord",
    "pow", "range", "repr", "reversed", "round", "set", "slice", "sorted", "str", "sum", "tuple", "zip",
    # Exceptions a reward function may raise or catch. BaseException and its other children
    # (KeyboardInterrupt, SystemExit, GeneratorExit) are left out: catching them could swallow a time-out.
    "ArithmeticError", "AssertionError", "AttributeError", "Exception", "FloatingPointError", "IndexError",
    "KeyError", "LookupError", "MemoryError", "NameError", "NotImplementedError", "OverflowError",
    "RecursionError", "RuntimeError", "StopIteration", "TypeError", "UnboundLocalError", "ValueError",
    "ZeroDivisionError",
)
SAFE_BUILTINS: dict[str, Any] = {
    "True": True, "False": False, "None": None, **{name: getattr(builtins, name) for name in _SAFE_NAMES},
}
"""The built-ins reward code sees (plus ``__import__`` for the allowed modules)."""

# Python built-ins that are not offered: naming one is refused at compile time with a reason.
_UNOFFERED = frozenset(name for name in dir(builtins) if not name.startswith("_")) - set(SAFE_BUILTINS) - {
    "print"  # RestrictedPython turns print(...) into a call of the print collector (which writes nowhere)
}
_WHY_UNOFFERED: dict[str, str] = {
    **dict.fromkeys(("open", "input"), "a reward function has no access to files or the console"),
    **dict.fromkeys(("eval", "exec", "compile"), "a reward function cannot run other code"),
    **dict.fromkeys(
        ("getattr", "setattr", "delattr", "hasattr", "vars", "globals", "locals", "dir", "type", "object",
         "super", "classmethod", "staticmethod", "property", "memoryview", "id", "issubclass"),
        "it reaches Python's internals, which a reward function cannot use",
    ),
    **dict.fromkeys(
        ("BaseException", "BaseExceptionGroup", "ExceptionGroup", "KeyboardInterrupt", "SystemExit",
         "GeneratorExit"),
        "catch `Exception` (or the errors you expect) instead",
    ),
    **dict.fromkeys(("breakpoint", "help", "exit", "quit", "copyright", "credits", "license"),
                    "it needs an interactive console"),
}

_BLOCKED_ATTRIBUTES: dict[str, str] = {
    "format": "`.format()` is not allowed (it can read any attribute by name): use an f-string such as "
              "f\"{x:.2f}\"",
    "format_map": "`.format_map()` is not allowed (it can read any attribute by name): use an f-string",
    "mro": "`.mro` is not allowed: it reaches Python's internals",
}

_STATEMENTS = {
    "Nonlocal": "`nonlocal`", "AsyncFunctionDef": "`async def`", "Await": "`await`",
    "AsyncFor": "`async for`", "AsyncWith": "`async with`", "TryStar": "`except*`", "Match": "`match`",
}
_FIX_UNDERSCORE = "names that start with \"_\" reach Python's internals, which a reward function cannot use"
_TRANSLATIONS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r'"(?P<name>[^"]*)" is an invalid attribute name because it starts with "_"'),
     lambda m: f"the attribute `.{m['name']}` is not allowed: {_FIX_UNDERSCORE}"),
    (re.compile(r'"(?P<name>[^"]*)" is an invalid variable name because it starts with "_"'),
     lambda m: f"the name `{m['name']}` is not allowed: {_FIX_UNDERSCORE}; rename it"),
    (re.compile(r'"(?P<name>[^"]*)" is an invalid (?:attribute|variable) name because it ends with'),
     lambda m: f"the name `{m['name']}` is not allowed: rename it"),
    (re.compile(r'"(?P<name>[^"]*)" is a restricted name'),
     lambda m: f"the attribute `.{m['name']}` is not allowed: it reaches the interpreter's frames, code or "
               "tracebacks"),
    (re.compile(r"(?:Exec|Eval) calls are not allowed"),
     lambda m: "eval() and exec() are not allowed: write the code itself in the function"),
    (re.compile(r'"(?P<name>[^"]*)" is a reserved name'),
     lambda m: f"`{m['name']}` is a reserved name: use another name"),
    (re.compile(r'"\*" imports are not allowed'),
     lambda m: "`from ... import *` is not allowed: import the names you use, e.g. `from math import sqrt`"),
    (re.compile(r"Augmented assignment of (?P<what>attributes|object items and slices) is not allowed"),
     lambda m: f"augmented assignment (`+=` and the like) of {m['what']} is not allowed: write "
               "`x[k] = x[k] + 1` instead"),
    (re.compile(r"(?P<what>\w+) statements are not allowed"),
     lambda m: f"{_STATEMENTS.get(m['what'], m['what'])} is not allowed in a reward function"),
)


class RefusedCode(Exception):
    """Reward source that uses something the sandbox does not allow; ``problem`` says what and the fix."""

    def __init__(self, problem: str, line: int | None) -> None:
        super().__init__(problem if line is None else f"line {line}: {problem}")
        self.problem = problem
        self.line = line


def _translated(info: str) -> str:
    """RestrictedPython's message in words a learner can act on (unknown messages pass through)."""
    for pattern, message in _TRANSLATIONS:
        found = pattern.search(info)
        if found:
            return message(found)
    return info


def _bound_names(tree: ast.AST) -> set[str]:
    """Every name the code binds somewhere (assignment, def, argument, import, except ... as)."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound


def _jumps_out_of(node: ast.AST, in_loop: bool = False) -> Iterator[ast.stmt]:
    """``return``, and ``break``/``continue`` not inside a loop of their own, under ``node``."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
        return
    if isinstance(node, ast.Return) or (isinstance(node, (ast.Break, ast.Continue)) and not in_loop):
        yield node
    if isinstance(node, (ast.For, ast.While)):
        for child in node.body:
            yield from _jumps_out_of(child, True)
        for child in node.orelse:
            yield from _jumps_out_of(child, in_loop)
        return
    for child in ast.iter_child_nodes(node):
        yield from _jumps_out_of(child, in_loop)


def _yields_in(node: ast.AST) -> Iterator[ast.expr]:
    """``yield`` and ``yield from`` under ``node`` that belong to its own scope (not to a nested function,
    though that function's defaults, annotations and decorators are evaluated in this scope)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            arguments = child.args
            outer: list[ast.AST] = [*arguments.defaults, *(d for d in arguments.kw_defaults if d is not None)]
            if not isinstance(child, ast.Lambda):
                outer += [*child.decorator_list, *(a.annotation for a in (*arguments.posonlyargs,
                          *arguments.args, *arguments.kwonlyargs) if a.annotation is not None)]
            for part in outer:
                if isinstance(part, (ast.Yield, ast.YieldFrom)):
                    yield part
                yield from _yields_in(part)
            continue
        if isinstance(child, ast.ClassDef):
            continue
        if isinstance(child, (ast.Yield, ast.YieldFrom)):
            yield child
        yield from _yields_in(child)


_YIELD_IN_CLEANUP = (
    "`{word}` inside a `{block}` statement is not allowed in a reward function: a generator kept after the "
    "call would run its clean-up code when it is collected, outside the reward's limits; yield outside "
    "the `{block}` statement (or return a list)"
)


class RewardPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy plus this project's rules (see the module docstring).

    Problems are collected as ``(line, message)`` in :attr:`problems`, in words a learner can act on, in
    reading order (of where each offending piece ends: ``a.__class__.__mro__`` names ``__class__`` first).
    """

    def __init__(self, bound: set[str] | None = None) -> None:
        super().__init__()
        self.bound = bound or set()
        self._found: list[tuple[int, int, int | None, str]] = []
        self._refused_yields: set[int] = set()

    @property
    def problems(self) -> list[tuple[int | None, str]]:
        return [(line, problem) for _, _, line, problem in sorted(self._found, key=lambda f: f[:2])]

    def error(self, node: ast.AST, info: str) -> None:
        super().error(node, info)
        self._record(node, _translated(info))

    def refuse(self, node: ast.AST, problem: str) -> None:
        """Record a problem already in our words."""
        self.errors.append(f"Line {getattr(node, 'lineno', None)}: {problem}")
        self._record(node, problem)

    def _record(self, node: ast.AST, problem: str) -> None:
        line = getattr(node, "lineno", None)
        end = getattr(node, "end_col_offset", None) or 0
        self._found.append((line or 0, end, line, problem))

    def visit_Name(self, node: ast.Name) -> Any:
        if isinstance(node.ctx, ast.Load) and node.id in _UNOFFERED and node.id not in self.bound:
            why = _WHY_UNOFFERED.get(node.id, "it is not one of the built-ins a reward function may use")
            self.refuse(node, f"`{node.id}` is not available in a reward function: {why}")
        return super().visit_Name(node)

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        if node.attr in _BLOCKED_ATTRIBUTES:
            self.refuse(node, _BLOCKED_ATTRIBUTES[node.attr])
        return _native(super().visit_Attribute(node), "_getattr_", ast.Attribute, "attr")

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        return _native(super().visit_Subscript(node), "_getitem_", ast.Subscript, "slice")

    def visit_Assign(self, node: ast.Assign) -> Any:
        # RestrictedPython wraps a tuple target's value in _unpack_sequence_ (and evaluates it once per
        # target): with _getiter_ being iter, plain unpacking does the same. Targets are still checked.
        return self.node_contents_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        if isinstance(node.target, ast.Name):  # n += 1: as safe as n = n + 1, which is not guarded either
            return self.node_contents_visit(node)
        return super().visit_AugAssign(node)  # refused for attributes and items

    def visit_ClassDef(self, node: ast.ClassDef) -> Any:
        self.refuse(node, "class definitions are not allowed in a reward function: use functions, dicts and "
                          "lists")
        return node

    def visit_Import(self, node: ast.Import) -> Any:
        for alias in node.names:
            if alias.name not in ALLOWED_MODULES:
                self.refuse(node, _import_refused(alias.name))
        return super().visit_Import(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> Any:
        module = "." * node.level + (node.module or "")
        if node.level or module not in ALLOWED_MODULES:
            self.refuse(node, _import_refused(module))
        return super().visit_ImportFrom(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> Any:
        if node.type is None:  # a bare except would also catch the time-out that ends a runaway call
            node.type = ast.copy_location(ast.Name("Exception", ast.Load()), node)
        return super().visit_ExceptHandler(node)

    def _refuse_yields_in(self, node: ast.AST, block: str) -> None:
        for found in _yields_in(node):
            if id(found) not in self._refused_yields:  # a try in a try: reported once
                self._refused_yields.add(id(found))
                word = "yield from" if isinstance(found, ast.YieldFrom) else "yield"
                self.refuse(found, _YIELD_IN_CLEANUP.format(word=word, block=block))

    def visit_With(self, node: ast.With) -> Any:
        self._refuse_yields_in(node, "with")
        return super().visit_With(node)

    def visit_Try(self, node: ast.Try) -> Any:
        self._refuse_yields_in(node, "try")
        for statement in node.finalbody:
            for jump in _jumps_out_of(statement):
                word = type(jump).__name__.lower()
                self.refuse(jump, f"`{word}` in a `finally:` block is not allowed: it would hide errors; "
                                  "move it after the try statement")
        return super().visit_Try(node)


def _native(node: Any, guard: str, kind: type[ast.expr], field: str) -> Any:
    """Undo RestrictedPython's ``guard(value, x)`` rewrite of a read (after its checks passed).

    Here ``_getattr_`` is ``getattr`` with a name checked at compile time and ``_getitem_`` is
    ``operator.getitem``: the native ``value.name`` and ``value[x]`` do exactly the same, without a
    call per read (reward code runs for every car at every step).
    """
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == guard
            and len(node.args) == 2 and not node.keywords):
        value, key = node.args
        if kind is ast.Attribute:
            if not isinstance(key, ast.Constant):
                return node
            key = key.value
        return ast.copy_location(kind(value=value, ctx=ast.Load(), **{field: key}), node)
    return node


def _import_refused(module: str) -> str:
    allowed = ", ".join(f"`{name}`" for name in ALLOWED_MODULES)
    return f"importing `{module}` is not allowed: a reward function may import only {allowed}"


def compile_restricted_source(source: str, filename: str) -> types.CodeType:
    """Compile reward source under :class:`RewardPolicy`.

    Raises ``SyntaxError`` for invalid Python and :class:`RefusedCode` (the first problem, by line) for code
    the sandbox does not allow.
    """
    tree = ast.parse(source, filename, "exec")
    policy = RewardPolicy(_bound_names(tree))
    tree = policy.visit(tree)
    if policy.problems:
        line, problem = policy.problems[0]
        raise RefusedCode(problem, line)
    ast.fix_missing_locations(tree)
    return compile(tree, filename, "exec", dont_inherit=True)


# ----- run time -------------------------------------------------------------------------------------------


@cache
def _public_members(module: types.ModuleType, names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A module's public members, without the modules it imported."""
    chosen = names if names is not None else tuple(name for name in vars(module) if not name.startswith("_"))
    return {name: getattr(module, name) for name in chosen
            if not isinstance(getattr(module, name), types.ModuleType)}


_RANDOM_FUNCTIONS = tuple(name for name in random.__all__
                          if name not in ("Random", "SystemRandom", "getstate", "setstate"))


def _module_namespace(name: str) -> types.SimpleNamespace:
    """A fresh read-only namespace standing in for an allowed module.

    Writes to it are refused by the write guard; ``random`` is backed by a generator of its own, so a
    reward function's ``random.seed`` touches nothing else in the process.
    """
    if name == "math":
        return types.SimpleNamespace(**_public_members(math))
    if name == "statistics":
        return types.SimpleNamespace(**_public_members(statistics, tuple(statistics.__all__)))
    generator = random.Random()
    return types.SimpleNamespace(**{function: getattr(generator, function) for function in _RANDOM_FUNCTIONS})


class _NoPrint:
    """RestrictedPython's print collector, writing nowhere: a reward function has no console."""

    __slots__ = ()

    def __init__(self, _getattr_: Any = None) -> None:
        pass

    def _call_print(self, *objects: Any, **options: Any) -> None:
        pass

    def __call__(self) -> str:
        return ""


def _pass_through(iterable: Any, spec: Any, _getiter_: Any) -> Any:
    """Sequence unpacking needs no guard here: ``_getiter_`` is plain ``iter``."""
    return iterable


_INPLACE = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow, "<<=": operator.ilshift,
    ">>=": operator.irshift, "|=": operator.ior, "^=": operator.ixor, "&=": operator.iand,
    "@=": operator.imatmul,
}


def _inplacevar(op: str, target: Any, value: Any) -> Any:
    return _INPLACE[op](target, value)


def _apply(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


def new_namespace() -> dict[str, Any]:
    """Fresh globals for one reward module: safe built-ins, the guards RestrictedPython's code calls,
    and an ``__import__`` that hands out the allowed modules' namespaces."""
    modules: dict[str, types.SimpleNamespace] = {}

    def guarded_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (),
                       level: int = 0) -> types.SimpleNamespace:
        if level or name not in ALLOWED_MODULES:
            raise ImportError(_import_refused(name))
        if name not in modules:
            modules[name] = _module_namespace(name)
        return modules[name]

    return {
        "__builtins__": {**SAFE_BUILTINS, "__import__": guarded_import},
        "__name__": "reward_module",
        "_getattr_": getattr,  # attribute names are compile-time constants, checked by RewardPolicy
        "_getitem_": operator.getitem,
        "_getiter_": iter,
        "_iter_unpack_sequence_": _pass_through,
        "_unpack_sequence_": _pass_through,
        "_write_": full_write_guard,
        "_inplacevar_": _inplacevar,
        "_print_": _NoPrint,
        "_apply_": _apply,
    }
