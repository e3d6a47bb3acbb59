"""Which reply keys the code uses, and which placeholders it fills in.

Read from the source of ``bot/`` and ``handlers/`` with ``ast`` (no import, no execution), so
``bot kb validate`` can refuse an operator's edit that deletes or renames a key the running bot
still asks for. A missed key is a crash mid-conversation, so the scan does not look for a few
call shapes: every string constant shaped like a key (``namespace.segment[.segment...]``, the
namespace one of ``REPLY_NAMESPACES``) counts as a key the code uses, wherever it is written:
a call argument, either side of a conditional expression, a table, a default argument, an
argument of a helper. Not counted: file names (``courses.yaml``), docstrings, declared dialogue
step names that are never passed to a reply call, and a key tested with ``key in replies``
first (the code has a fallback, so the key is optional).

Placeholders are checked where the scan can see what the code fills in: calls
``x.say(key, ..., name=...)``, ``x.reply_text(...)``, ``x.text(...)`` and local aliases
(``r = turn.reply_text``), followed through variables, conditional expressions, tables,
and the parameters and return values of functions of ``bot/`` and ``handlers/`` (local or
imported with ``from ... import``): ``_button(turn, "subscribe.button_done", ...)`` whose body
calls ``turn.reply_text(key)``. A key the scan cannot follow to such a call is taken to get
no placeholders, so an operator cannot add one that the code would not fill in.

A key built at run time (f-string, ``+``, ``%``, ``.format``) starting with ``namespace.``
cannot be checked against the files. It is accepted only when the code tests it with
``key in replies`` before use (and falls back when it is missing); any other is reported as a
validation problem naming the Python file and line, so a new one cannot slip through.
"""

from __future__ import annotations

import ast
import gc
import json
import logging
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot.content.replies import REPLY_NAMESPACES

_METHODS = {"say", "reply_text", "text"}
_FORMAT = {"format", "format_map"}
#: A key-shaped string ending in one of these is a file name, not a key (``courses.yaml``).
_FILE_SUFFIXES = {
    "yaml",
    "yml",
    "csv",
    "py",
    "json",
    "txt",
    "md",
    "toml",
    "xlsx",
    "pdf",
    "db",
    "html",
}
log = logging.getLogger(__name__)

#: Seconds the child process that reads the code may take (about 2 s on a 2-core machine).
SCAN_TIMEOUT_SECONDS = 60.0

_KEY = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z0-9_]+)+")
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.Module)

#: The pseudo-variable holding what a function returns.
_RETURN = "<return>"
#: A variable: the scope (function node or module) that holds it, and its name.
_Var = tuple[ast.AST, str]


@dataclass(frozen=True)
class ReplyUse:
    """One place in the code that needs a reply."""

    key: str
    params: frozenset[str]
    #: True when the call passes ``**kwargs``: the supplied names cannot be known statically.
    open_params: bool
    where: str
    #: False when the key is only named (a comparison, a call the scan cannot follow): it must
    #: exist, and since what the code fills in is unknown, it is taken to fill in nothing.
    params_known: bool = True


@dataclass(frozen=True)
class BuiltKey:
    """A reply key the code builds at run time, e.g. ``f"export.sector_label.{sector}"``."""

    #: The literal text it starts with (``export.sector_label.``).
    prefix: str
    #: The expression as written, for the problem line.
    source: str
    file: str
    line: int
    #: True when the code tests ``key in replies`` first and falls back when it is missing.
    guarded: bool


@dataclass(frozen=True)
class CodeScan:
    """Everything the code says about reply keys."""

    uses: tuple[ReplyUse, ...]
    built: tuple[BuiltKey, ...] = ()
    #: How many source files were read (none: the sources are missing, nothing was checked).
    files: int = 0

    @property
    def keys(self) -> frozenset[str]:
        """Every key the code needs (each must exist in exactly one reply file)."""
        return frozenset(use.key for use in self.uses)

    @property
    def unchecked(self) -> tuple[BuiltKey, ...]:
        """Keys built at run time with no fallback: validation cannot vouch for them."""
        return tuple(b for b in self.built if not b.guarded)

    @property
    def optional_prefixes(self) -> frozenset[str]:
        """Prefixes of keys the code builds and tests first (an operator may delete those)."""
        return frozenset(b.prefix for b in self.built if b.guarded)


def is_key(text: str) -> bool:
    """Whether ``text`` is shaped like a reply key (and not like a file name)."""
    if not _KEY.fullmatch(text):
        return False
    parts = text.split(".")
    return parts[0] in REPLY_NAMESPACES and parts[-1] not in _FILE_SUFFIXES


def _starts_key(text: str) -> bool:
    head, dot, _ = text.partition(".")
    return bool(dot) and head in REPLY_NAMESPACES


def _leaves(expr: ast.expr) -> Iterator[ast.expr]:
    """The expressions whose value ``expr`` may evaluate to (through ``a if c else b``, ``or``)."""
    if isinstance(expr, ast.IfExp):
        yield from _leaves(expr.body)
        yield from _leaves(expr.orelse)
    elif isinstance(expr, ast.BoolOp):
        for value in expr.values:
            yield from _leaves(value)
    elif isinstance(expr, ast.NamedExpr):
        yield from _leaves(expr.value)
    else:
        yield expr


@dataclass
class _Need:
    """What the reply calls a value reaches supply: placeholder names, and whether optional."""

    params: set[str] = field(default_factory=set)
    open: bool = False
    optional: bool = True

    def merge(self, other: _Need) -> None:
        self.params |= other.params
        self.open = self.open or other.open
        self.optional = self.optional and other.optional

    def state(self) -> tuple[int, bool, bool]:
        return len(self.params), self.open, self.optional


_Def = ast.FunctionDef | ast.AsyncFunctionDef


class _Program:
    """Every module of ``bot/`` and ``handlers/``: where each string value can flow.

    A value flows into a variable (``(scope, name)``) by assignment, a ``for`` loop, a
    parameter's default, an argument of a call to a function of the program (local,
    or imported with ``from ... import``), or a ``return`` (the pseudo-variable ``<return>``).
    """

    def __init__(self, modules: list[tuple[ast.Module, str, str]]) -> None:
        self.parent: dict[ast.AST, ast.AST] = {}
        self.nodes: dict[ast.AST, list[ast.AST]] = {}
        self.rel: dict[ast.AST, str] = {}
        self.by_name: dict[str, ast.Module] = {}
        self.defs: dict[ast.AST, dict[str, list[_Def]]] = {}
        self.top: dict[ast.AST, dict[str, list[_Def]]] = {}
        self.imports: dict[ast.AST, dict[str, tuple[str, str]]] = {}
        self.flows: dict[_Var, list[ast.expr]] = {}
        self.into: dict[ast.AST, list[_Var]] = {}
        self.aliases: dict[ast.AST, set[str]] = {}
        self.guarded_vars: set[_Var] = set()
        self.guarded_nodes: set[ast.AST] = set()
        calls: list[ast.Call] = []
        for tree, rel, dotted in modules:
            self.rel[tree] = rel
            self.by_name[dotted] = tree
            nodes: list[ast.AST] = [tree]
            self.nodes[tree] = nodes
            for node in nodes:  # one walk; every later pass reads this list
                for child in ast.iter_child_nodes(node):
                    self.parent[child] = node
                    nodes.append(child)
            calls += self._collect(tree, dotted, rel.endswith("__init__.py"))
        for call in calls:
            self._bind_arguments(call)

    # -- where a node is -------------------------------------------------------------------

    def scope(self, node: ast.AST) -> ast.AST:
        """The function holding ``node``, or its module."""
        p = self.parent.get(node)
        while p is not None and not isinstance(p, _SCOPES):
            p = self.parent.get(p)
        return p if p is not None else node

    def module(self, node: ast.AST) -> ast.AST:
        while not isinstance(node, ast.Module):
            node = self.parent[node]
        return node

    # -- collecting ------------------------------------------------------------------------

    def var(self, name: ast.Name) -> _Var:
        """The variable a name means: the function's own, else the module's."""
        scope = self.scope(name)
        if (scope, name.id) in self.flows or isinstance(scope, ast.Module):
            return scope, name.id
        if isinstance(scope, _Def | ast.Lambda):
            args = scope.args
            params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
            if name.id in {a.arg for a in params if a is not None}:
                return scope, name.id
        return self.module(name), name.id

    def constants(self, var: _Var) -> list[ast.Constant]:
        """The string constants that can flow into ``var`` (through other variables)."""
        out: list[ast.Constant] = []
        seen: set[_Var] = set()
        todo = [var]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            for expr in self.flows.get(current, []):
                for leaf in _leaves(expr):
                    if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str):
                        out.append(leaf)
                    elif isinstance(leaf, ast.Name):
                        todo.append(self.var(leaf))
        return out

    def _flow(self, var: _Var, expr: ast.expr) -> None:
        self.flows.setdefault(var, []).append(expr)
        for leaf in _leaves(expr):
            self.into.setdefault(leaf, []).append(var)

    def _collect(self, tree: ast.Module, dotted: str, package: bool) -> list[ast.Call]:
        calls: list[ast.Call] = []
        defs: dict[str, list[_Def]] = {}
        imports: dict[str, tuple[str, str]] = {}
        self.defs[tree], self.imports[tree] = defs, imports
        self.top[tree] = {}
        for stmt in tree.body:
            if isinstance(stmt, _Def):
                self.top[tree].setdefault(stmt.name, []).append(stmt)
        for node in self.nodes[tree]:
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                scope = self.scope(node)
                for target in targets:
                    if not isinstance(target, ast.Name):
                        continue
                    self._flow((scope, target.id), node.value)
                    value = node.value
                    if isinstance(value, ast.Attribute) and value.attr in _METHODS:
                        self.aliases.setdefault(scope, set()).add(target.id)
            elif isinstance(node, ast.For | ast.AsyncFor) and isinstance(node.target, ast.Name):
                self._flow((self.scope(node), node.target.id), node.iter)  # opened on the way
            elif isinstance(node, _Def):
                defs.setdefault(node.name, []).append(node)
                positional = [*node.args.posonlyargs, *node.args.args]
                defaults = node.args.defaults
                for arg, default in zip(
                    positional[len(positional) - len(defaults) :], defaults, strict=True
                ):
                    self._flow((node, arg.arg), default)
                for arg, kw_default in zip(
                    node.args.kwonlyargs, node.args.kw_defaults, strict=True
                ):
                    if kw_default is not None:
                        self._flow((node, arg.arg), kw_default)
            elif isinstance(node, ast.ImportFrom):
                base = dotted.split(".")
                if node.level:
                    base = base[: len(base) - node.level + (1 if package else 0)]
                    source = ".".join([*base, node.module] if node.module else base)
                else:
                    source = node.module or ""
                for alias in node.names:
                    imports[alias.asname or alias.name] = (source, alias.name)
            elif isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In | ast.NotIn):
                scope = self.scope(node)
                for leaf in _leaves(node.left):
                    self.guarded_nodes.add(leaf)
                    if isinstance(leaf, ast.Name):
                        self.guarded_vars.add((scope, leaf.id))
            elif isinstance(node, ast.Return) and node.value is not None:
                self._flow((self.scope(node), _RETURN), node.value)
            elif isinstance(node, ast.Call):
                calls.append(node)
        return calls

    def functions(self, tree: ast.AST, name: str, depth: int = 0) -> list[_Def]:
        """The functions ``name`` means in module ``tree`` (its own, or imported ones)."""
        own = self.defs.get(tree, {}).get(name) if depth == 0 else self.top.get(tree, {}).get(name)
        if own:
            return own
        source, original = self.imports.get(tree, {}).get(name, ("", ""))
        target = self.by_name.get(source)
        if target is None or depth > 5:
            return []
        return self.functions(target, original, depth + 1)

    def _bind_arguments(self, call: ast.Call) -> None:
        """A call to a function of the program: its arguments flow into its parameters."""
        func = call.func
        if isinstance(func, ast.Name):
            name, skip = func.id, 0
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            if func.value.id not in ("self", "cls"):
                return
            name, skip = func.attr, 1
        else:
            return
        for fn in self.functions(self.module(call), name):
            positional = [*fn.args.posonlyargs, *fn.args.args][skip:]
            for arg, value in zip(positional, call.args, strict=False):
                if isinstance(value, ast.Starred):
                    break
                self._flow((fn, arg.arg), value)
            names = {a.arg for a in [*positional, *fn.args.kwonlyargs]}
            for keyword in call.keywords:
                if keyword.arg in names:
                    self._flow((fn, keyword.arg), keyword.value)

    def _is_reply_call(self, call: ast.Call) -> bool:
        func = call.func
        if isinstance(func, ast.Attribute):
            return func.attr in _METHODS
        if isinstance(func, ast.Name):
            scopes = (self.scope(call), self.module(call))
            return any(func.id in self.aliases.get(scope, set()) for scope in scopes)
        return False

    # -- keys built at run time ------------------------------------------------------------

    def _leading(self, expr: ast.AST) -> str | None:
        """The literal text a string expression starts with, when the source shows it."""
        if isinstance(expr, ast.Constant):
            return expr.value if isinstance(expr.value, str) else None
        if isinstance(expr, ast.JoinedStr) and expr.values:
            return self._leading(expr.values[0])
        if isinstance(expr, ast.FormattedValue):
            if expr.conversion == -1 and expr.format_spec is None:
                return self._leading(expr.value)
            return None
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add | ast.Mod):
            return self._leading(expr.left)
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
            if expr.func.attr in _FORMAT:
                return self._leading(expr.func.value)
            return None
        if isinstance(expr, ast.Name):
            texts = [str(c.value) for c in self.constants(self.var(expr))]
            return next((t for t in texts if _starts_key(t)), texts[0] if texts else None)
        return None

    def _prefixes(self, expr: ast.AST) -> list[ast.Constant]:
        """The constants passed in as the start of a built key (``key`` in ``f"{key}_x"``)."""
        while True:
            if isinstance(expr, ast.JoinedStr) and expr.values:
                expr = expr.values[0]
            elif isinstance(expr, ast.FormattedValue):
                expr = expr.value
            elif isinstance(expr, ast.BinOp):
                expr = expr.left
            elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
                expr = expr.func.value
            elif isinstance(expr, ast.Name):
                return self.constants(self.var(expr))
            else:
                return []

    def _is_built(self, node: ast.AST) -> bool:
        if isinstance(node, ast.JoinedStr) or (
            isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod)
        ):
            pass
        elif not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _FORMAT
        ):
            return False
        leading = self._leading(node)
        return leading is not None and _starts_key(leading)

    def _guarded(self, node: ast.AST) -> bool:
        """The value is tested with ``in`` (directly or through a variable) before use."""
        if node in self.guarded_nodes:
            return True
        return any(var in self.guarded_vars for var in self.into.get(node, []))

    # -- the scan --------------------------------------------------------------------------

    def _reached(self) -> dict[ast.AST, _Need]:
        """Each string constant that reaches a reply call, with what that call supplies."""
        needs: dict[_Var, _Need] = {}
        found: dict[ast.AST, _Need] = {}
        work: list[_Var] = []

        def reach(leaf: ast.AST, need: _Need) -> None:
            if isinstance(leaf, ast.Name):
                var = self.var(leaf)
                needs.setdefault(var, _Need()).merge(need)
                work.append(var)  # processed again only if its need changed
            elif isinstance(leaf, ast.Subscript):  # KEYS[i], TABLE[name]
                reach(leaf.value, need)
            elif isinstance(leaf, ast.Tuple | ast.List | ast.Set):
                for element in leaf.elts:
                    for inner in _leaves(element):
                        reach(inner, need)
            elif isinstance(leaf, ast.Dict):
                for value in leaf.values:
                    for inner in _leaves(value):
                        reach(inner, need)
            elif isinstance(leaf, ast.Constant) and isinstance(leaf.value, str):
                found.setdefault(leaf, _Need()).merge(need)
            elif isinstance(leaf, ast.Call) and isinstance(leaf.func, ast.Name):
                for fn in self.functions(self.module(leaf), leaf.func.id):  # a helper's result
                    needs.setdefault((fn, _RETURN), _Need()).merge(need)
                    work.append((fn, _RETURN))

        for tree in self.rel:
            for node in self.nodes[tree]:
                if isinstance(node, ast.Call) and node.args and self._is_reply_call(node):
                    names = {k.arg for k in node.keywords if k.arg is not None} - {"rng"}
                    opened = any(k.arg is None for k in node.keywords)
                    for leaf in _leaves(node.args[0]):
                        reach(leaf, _Need(set(names), opened, leaf in self.guarded_nodes))
        done: dict[_Var, tuple[int, bool, bool]] = {}
        while work:
            var = work.pop()
            need = needs[var]
            if done.get(var) == need.state():
                continue
            done[var] = need.state()
            passed = _Need(set(need.params), need.open, need.optional or var in self.guarded_vars)
            for expr in self.flows.get(var, []):
                for leaf in _leaves(expr):
                    reach(leaf, passed)
        return found

    def _declared_steps(self) -> set[str]:
        """Step names declared as ``class X(StepGroup, prefix="p"): name = Step()``."""
        names: set[str] = set()
        classes = [n for nodes in self.nodes.values() for n in nodes if isinstance(n, ast.ClassDef)]
        for node in classes:
            prefix = next(
                (
                    k.value.value
                    for k in node.keywords
                    if k.arg == "prefix"
                    and isinstance(k.value, ast.Constant)
                    and isinstance(k.value.value, str)
                ),
                None,
            )
            if prefix is None:
                continue
            for stmt in node.body:
                if (
                    isinstance(stmt, ast.Assign)
                    and isinstance(stmt.value, ast.Call)
                    and ast.unparse(stmt.value.func).rsplit(".", 1)[-1] == "Step"
                ):
                    names |= {f"{prefix}.{t.id}" for t in stmt.targets if isinstance(t, ast.Name)}
        return names

    def scan(self) -> tuple[list[ReplyUse], list[BuiltKey]]:
        found = self._reached()
        built: list[BuiltKey] = []
        inside: set[ast.AST] = set()
        prefixes: set[ast.AST] = set()
        for tree, rel in self.rel.items():
            outermost = [n for n in self.nodes[tree] if self._is_built(n) and n not in inside]
            for node in outermost:
                inside |= set(ast.walk(node)) - {node}
                prefixes |= set(self._prefixes(node))
            built += [
                BuiltKey(
                    prefix=re.split(r"[{%]", self._leading(node) or "", maxsplit=1)[0],
                    source=ast.unparse(node),
                    file=rel,
                    line=getattr(node, "lineno", 1),
                    guarded=self._guarded(node),
                )
                for node in outermost
                if node not in inside
            ]
        steps = self._declared_steps()
        uses: list[ReplyUse] = []
        for tree, rel in self.rel.items():
            for node in self.nodes[tree]:
                if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                    continue
                if not is_key(node.value) or node in inside or node in prefixes:
                    continue  # not a key, or only the start of one built at run time
                if isinstance(self.parent.get(node), ast.Expr | ast.JoinedStr):
                    continue  # a docstring, or a piece of an f-string
                reached = found.get(node)
                where = f"{rel}:{node.lineno}"
                if reached is not None:
                    if not reached.optional:
                        params = frozenset(reached.params)
                        uses.append(ReplyUse(node.value, params, reached.open, where))
                elif node.value in steps or node in self.guarded_nodes:
                    continue  # a dialogue step's name, or a key the code tests for first
                else:
                    uses.append(ReplyUse(node.value, frozenset(), False, where, False))
        return uses, built


def _sources(root: Path) -> Iterator[Path]:
    for package in ("bot", "handlers"):
        yield from sorted((root / package).rglob("*.py"))


#: Scans done in this process, by code root (a few: tests read copies of the code).
_scans: dict[Path, CodeScan] = {}
_SCANS_KEPT = 8
#: Children started by ``start_scan`` and not yet read.
_running: dict[Path, subprocess.Popen[bytes]] = {}
#: ``_lock`` guards the dicts; each root's own lock is held while its scan is under way, so a
#: second caller waits for that one answer and callers for other roots do not wait.
_lock = threading.Lock()
_root_locks: dict[Path, threading.Lock] = {}


def start_scan(root: Path) -> None:
    """Start reading the code now, in its child process, unless that is done or under way:
    a knowledge load calls this first, so its parsing of the files overlaps the scan (and
    ``settle_scan`` last)."""
    root = root.resolve()
    with _lock:
        if root in _scans or root in _running:
            return
        try:
            _running[root] = _spawn(root)
        except (OSError, ValueError, TypeError) as exc:  # scan_code reads the code here instead
            log.warning("could not start reading the code", extra={"error": type(exc).__name__})


def settle_scan(root: Path) -> None:
    """Read the answer of a child ``start_scan`` started if nothing asked for it (a load that
    stopped early): no child is left behind, blocked on a full pipe or as a zombie."""
    root = root.resolve()
    with _lock:
        started = root in _running
    if started:
        scan_code(root)


def scan_code(root: Path) -> CodeScan:
    """Every reply use and every run-time-built key under ``root``'s ``bot/`` and ``handlers/``
    (read once per process and root).

    Read in a child process (``python -m bot.kb.reply_usage ROOT``, JSON back). Why: the
    syntax trees of the whole code are about 60 MB of objects tied in cycles, while the
    answer is a few hundred entries. Read here, they raised every process's peak memory by
    that much at start-up and left its heap fragmented for good (``bot serve`` kept ~30 MB it
    did not use). When no child can run, the code is read here as before (and a warning
    says so).
    """
    root = root.resolve()
    with _lock:
        found = _scans.get(root)
        if found is not None:
            return found
        mine = _root_locks.setdefault(root, threading.Lock())
    with mine:
        with _lock:
            found = _scans.get(root)  # scanned while this caller waited for the root
            child = _running.pop(root, None)
        if found is None:
            found = _scan_in_child_or_here(root, child)
        with _lock:
            if root not in _scans and len(_scans) >= _SCANS_KEPT:
                _scans.pop(next(iter(_scans)))
            _scans[root] = found
        return found


def _spawn(root: Path) -> subprocess.Popen[bytes]:
    if not sys.executable:  # an embedding host: no interpreter to start
        raise OSError("no Python interpreter to run the child")
    package_home = str(Path(__file__).resolve().parents[2])  # holds the ``bot`` package
    return subprocess.Popen(
        [sys.executable, "-m", "bot.kb.reply_usage", str(root)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=package_home,
    )


def _scan_in_child_or_here(root: Path, child: subprocess.Popen[bytes] | None) -> CodeScan:
    try:
        child = child or _spawn(root)
        try:
            out, err = child.communicate(timeout=SCAN_TIMEOUT_SECONDS)
        finally:
            if child.poll() is None:  # timed out (or interrupted): no child left behind
                child.kill()
                child.communicate()
        if child.returncode != 0:
            raise subprocess.CalledProcessError(child.returncode, child.args, out, err)
        return _from_json(json.loads(out.decode("utf-8")))
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError) as exc:
        detail = getattr(exc, "stderr", None) or b""
        log.warning(
            "reading the code's reply keys in a child process failed; reading them here",
            extra={
                "error": type(exc).__name__,
                "status": getattr(exc, "returncode", None),
                "detail": detail.decode("utf-8", "replace")[-500:],
            },
        )
        return _scan(root)


def _to_json(scan: CodeScan) -> dict[str, Any]:
    return {
        "uses": [
            [u.key, sorted(u.params), u.open_params, u.where, u.params_known] for u in scan.uses
        ],
        "built": [asdict(b) for b in scan.built],
        "files": scan.files,
    }


def _from_json(data: dict[str, Any]) -> CodeScan:
    uses = tuple(
        ReplyUse(str(key), frozenset(map(str, params)), bool(open_), str(where), bool(known))
        for key, params, open_, where, known in data["uses"]
    )
    built = tuple(BuiltKey(**b) for b in data["built"])
    return CodeScan(uses, built, int(data["files"]))


def _scan(root: Path) -> CodeScan:
    modules: list[tuple[ast.Module, str, str]] = []
    for path in _sources(root):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = path.relative_to(root)
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules.append((tree, rel.as_posix(), ".".join(parts)))
    uses, built = _Program(modules).scan()
    order = {rel: i for i, (_, rel, _) in enumerate(modules)}

    def line(where: str) -> tuple[int, int]:
        rel, _, number = where.rpartition(":")
        return order[rel], int(number)

    uses.sort(key=lambda u: (line(u.where), u.key))
    built.sort(key=lambda b: (order[b.file], b.line))
    return CodeScan(tuple(uses), tuple(built), len(modules))


def reply_uses(root: Path) -> tuple[ReplyUse, ...]:
    """Every reply use under ``root``'s ``bot/`` and ``handlers/`` packages."""
    return scan_code(root).uses


def code_root() -> Path:
    """The folder holding the ``bot`` and ``handlers`` packages (a checkout or site-packages)."""
    return Path(__file__).resolve().parent.parent.parent


if __name__ == "__main__":  # the child process of ``scan_code``
    gc.disable()  # the trees stay alive until the end: collections would only walk them
    answer = json.dumps(_to_json(_scan(Path(sys.argv[1]))), ensure_ascii=False)
    sys.stdout.buffer.write(answer.encode("utf-8"))  # whatever the locale's encoding
