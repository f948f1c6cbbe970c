"""Static review of a candidate's change: what risky constructs did the child add?

``review(parent, child)`` parses both programs with ``ast`` and counts, per ``(code, key)``,
the occurrences of constructs that a program being scored has no business using: starting
processes, opening sockets, writing files, reaching into the interpreter, patching other
modules, exiting, evaluating strings as code, naming the evaluator or its held-out data. Only
what the child *adds* is flagged: a construct already present in the parent as often is not.
Where the child has more occurrences than the parent, those on lines the edit changed are
reported first.

This is a tripwire for review, not a security boundary: code can hide a name in a computed
string. The sandbox is what contains a candidate; this makes a suspicious edit visible.

Flag codes (``CODES`` holds a one-line description of each):
import-process, import-network, import-ctypes, import-filesystem, file-write, path-read,
introspection, builtins-assign, foreign-attr-assign, process-exit, signals, dynamic-code,
evaluator-reference, holdout-reference.
"""

from __future__ import annotations

import ast
import difflib
import functools
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

CODES = {
    "import-process": "starts or controls other processes",
    "import-network": "can reach the network",
    "import-ctypes": "raw memory or foreign-function access",
    "import-filesystem": "changes or lists the file system",
    "file-write": "writes a file",
    "path-read": "opens a path outside its own folder, or a computed path",
    "introspection": "reaches into the interpreter: frames, globals, loaded modules",
    "builtins-assign": "replaces a built-in",
    "foreign-attr-assign": "patches an attribute of an imported module or object",
    "process-exit": "exits the process",
    "signals": "handles or sends signals",
    "dynamic-code": "runs code built at run time",
    "evaluator-reference": "names the evaluator",
    "holdout-reference": "names held-out data",
    "engine-state-write": "writes to the engine's context (an improver may change ctx.state only)",
}
ENGINE_CONTEXT = "ctx"  # the name improvers give the context the engine hands them


@dataclass(frozen=True)
class Flag:
    """One risky construct the child added: its code, its line in the child, what it is."""

    code: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: [{self.code}] {self.message}"


# Modules whose import is flagged, by top-level (or dotted) name.
_MODULES = {
    "import-process": (
        "subprocess", "multiprocessing", "concurrent.futures.process", "pty", "pexpect", "sh",
        "plumbum", "_posixsubprocess", "asyncio.subprocess",
    ),
    "import-network": (
        "socket", "http", "urllib", "urllib3", "requests", "httpx", "aiohttp", "ssl", "ftplib",
        "smtplib", "poplib", "imaplib", "telnetlib", "xmlrpc", "socketserver", "websocket",
        "websockets", "paramiko", "webbrowser", "_socket", "_ssl",
    ),
    "import-ctypes": ("ctypes", "_ctypes", "cffi", "mmap"),
    "import-filesystem": ("shutil", "pathlib", "tempfile", "glob", "fileinput", "zipfile", "tarfile"),
    "introspection": ("gc", "inspect", "_thread._local"),
    "signals": ("signal", "_signal"),
    "dynamic-code": ("marshal", "runpy", "code", "codeop", "importlib.util", "importlib.machinery"),
}

# Attributes of modules: references to these (called or not) are flagged.
_ATTRIBUTES = {
    "import-process": (
        "os.system", "os.popen", "os.spawnl", "os.spawnle", "os.spawnlp", "os.spawnlpe", "os.spawnv",
        "os.spawnve", "os.spawnvp", "os.spawnvpe", "os.fork", "os.forkpty", "os.execl", "os.execle",
        "os.execlp", "os.execlpe", "os.execv", "os.execve", "os.execvp", "os.execvpe",
        "os.posix_spawn", "os.posix_spawnp", "concurrent.futures.ProcessPoolExecutor",
        "asyncio.create_subprocess_exec", "asyncio.create_subprocess_shell",
    ),
    "import-network": ("asyncio.open_connection", "asyncio.start_server", "asyncio.open_unix_connection"),
    "import-filesystem": (
        "os.remove", "os.unlink", "os.rename", "os.renames", "os.replace", "os.rmdir", "os.removedirs",
        "os.mkdir", "os.makedirs", "os.chmod", "os.chown", "os.lchown", "os.link", "os.symlink",
        "os.truncate", "os.ftruncate", "os.listdir", "os.scandir", "os.walk", "os.fwalk", "os.chdir",
        "os.chroot", "os.open", "os.write", "os.utime", "os.mkfifo", "os.mknod", "os.putenv",
        "os.unsetenv",
    ),
    "introspection": (
        "sys._getframe", "sys.modules", "sys.settrace", "sys.setprofile", "sys.addaudithook",
        "sys._current_frames", "sys.meta_path", "sys.path_hooks", "sys.displayhook", "sys.excepthook",
        "builtins.__dict__",
    ),
    "process-exit": ("os._exit", "os.abort", "sys.exit"),
    "signals": ("os.kill", "os.killpg", "os.setpgrp", "os.setsid"),
    "dynamic-code": (
        "builtins.eval", "builtins.exec", "builtins.compile", "types.FunctionType", "types.CodeType",
        "types.LambdaType", "pickle.loads", "pickle.load", "dill.loads", "importlib.reload",
        "builtins.__import__",
    ),
    "file-write": (
        "numpy.save", "numpy.savez", "numpy.savez_compressed", "numpy.savetxt", "pickle.dump",
        "json.dump",
    ),
}

# Built-in functions, when not rebound by the program itself.
_BUILTINS = {
    "eval": "dynamic-code",
    "exec": "dynamic-code",
    "compile": "dynamic-code",
    "__import__": "dynamic-code",
    "exit": "process-exit",
    "quit": "process-exit",
    "globals": "introspection",
    "__builtins__": "introspection",
}

# Attribute names that only interpreter internals need, whatever object they hang on.
_DUNDER_INTROSPECTION = {
    "__globals__", "__code__", "__builtins__", "__closure__", "__subclasses__", "__bases__",
    "__base__", "__mro__", "__getattribute__", "f_back", "f_locals", "f_globals", "f_builtins",
    "f_code", "gi_frame", "cr_frame", "ag_frame", "tb_frame", "tb_next", "co_code", "__loader__",
    "__spec__",
}
# Methods that write or read files whatever object they are called on (pathlib, numpy).
_WRITE_METHODS = {"write_text", "write_bytes", "tofile", "unlink", "rmdir", "touch", "symlink_to",
                  "hardlink_to", "chmod"}
_READ_CALLS = {"open", "io.open", "codecs.open", "os.open", "pathlib.Path", "pathlib.PurePath",
               "pathlib.PosixPath", "numpy.load", "numpy.loadtxt", "numpy.genfromtxt",
               "numpy.fromfile", "numpy.memmap"}
_PROCESS_EXIT_RAISES = {"SystemExit", "KeyboardInterrupt", "GeneratorExit"}


def _index(table: dict[str, tuple[str, ...]]) -> dict[str, list[tuple[str, str]]]:
    """{first dotted part: [(code, name), ...]}: a rule lookup costs one dict access."""
    index: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for code, names in table.items():
        for name in names:
            index[name.split(".")[0]].append((code, name))
    return dict(index)


_MODULE_INDEX = _index(_MODULES)
_ATTRIBUTE_INDEX = _index(_ATTRIBUTES)


def _lookup(index: dict[str, list[tuple[str, str]]], dotted: str) -> list[tuple[str, str]]:
    """The (code, name) rules that ``dotted`` is, or lies under (``os.path.join`` under ``os``)."""
    return [
        (code, name)
        for code, name in index.get(dotted.split(".", 1)[0], ())
        if dotted == name or dotted.startswith(name + ".")
    ]


def _module_code(module: str) -> tuple[str, str] | None:
    hits = _lookup(_MODULE_INDEX, module)
    return hits[0] if hits else None


def _attribute_codes(dotted: str) -> list[tuple[str, str]]:
    return _lookup(_ATTRIBUTE_INDEX, dotted)


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class _Protected:
    name: str
    code: str
    identifiers: frozenset[str]  # exact identifier matches (``evaluate``, module stem of ``evaluate.py``)
    pattern: re.Pattern[str]  # where it shows inside a string

    @classmethod
    def make(cls, name: str, code: str) -> _Protected:
        base = name.rstrip("/").rsplit("/", 1)[-1] or name
        identifiers = {base} if _IDENT.match(base) else set()
        if base.endswith(".py") and _IDENT.match(base[:-3]):
            identifiers.add(base[:-3])
        if _IDENT.match(base):
            pattern = re.compile(r"(?<![A-Za-z0-9_])" + re.escape(base) + r"(?![A-Za-z0-9_])")
        else:
            pattern = re.compile(re.escape(base))
        return cls(base, code, frozenset(identifiers), pattern)


_SKIP = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)


def _walk(tree: ast.AST) -> list[ast.AST]:
    """Every node but contexts and operators, breadth first (faster than ``ast.walk``)."""
    out = [tree]
    index = 0
    AST, skip = ast.AST, _SKIP
    while index < len(out):
        node = out[index]
        index += 1
        for field in node._fields:
            value = getattr(node, field, None)
            if type(value) is list:
                out.extend(v for v in value if isinstance(v, AST) and not isinstance(v, skip))
            elif isinstance(value, AST) and not isinstance(value, skip):
                out.append(value)
    return out


class _Scanner:
    """Collects (code, key, line, message) occurrences in one module.

    One flat pass over the nodes (a recursive NodeVisitor is several times slower): each node
    type has a handler; an attribute chain ``a.b.c`` is matched against module rules once, at
    its outermost node.
    """

    def __init__(self, protected: Sequence[_Protected]) -> None:
        self.found: list[tuple[str, str, int, str]] = []
        self.aliases: dict[str, str] = {}  # local name -> dotted module or object it was imported as
        self.bound: set[str] = set()  # names the program binds itself (shadowing builtins)
        self.protected = protected
        self.docstrings: set[int] = set()

    def scan(self, tree: ast.AST) -> None:
        nodes = _walk(tree)
        self.prepare(nodes)
        handlers: dict[type, Callable[[Any], None]] = {
            ast.Import: self.visit_Import,
            ast.ImportFrom: self.visit_ImportFrom,
            ast.Name: self.visit_Name,
            ast.Attribute: self.visit_Attribute,
            ast.Subscript: self.visit_Subscript,
            ast.Call: self.visit_Call,
            ast.FunctionDef: self.visit_FunctionDef,
            ast.AsyncFunctionDef: self.visit_FunctionDef,
            ast.ClassDef: self.visit_FunctionDef,
            ast.Raise: self.visit_Raise,
            ast.Constant: self.visit_Constant,
        }
        get = handlers.get
        for node in nodes:
            handler = get(type(node))
            if handler is not None:
                handler(node)

    # --- setup: what names mean
    def prepare(self, nodes: list[ast.AST]) -> None:
        self.inner_attributes: set[int] = set()
        Name, Attribute, Import, ImportFrom, Expr, Arg, Load = (
            ast.Name, ast.Attribute, ast.Import, ast.ImportFrom, ast.Expr, ast.arg, ast.Load
        )
        node: Any  # dispatched on its exact type() below (faster than isinstance), which mypy cannot narrow
        for node in nodes:
            kind = type(node)
            if kind is Name:
                if type(node.ctx) is not Load:
                    self.bound.add(node.id)
            elif kind is Attribute:
                if type(node.value) is Attribute:
                    self.inner_attributes.add(id(node.value))
            elif kind is Arg:
                self.bound.add(node.arg)
            elif kind is Expr:
                if type(node.value) is ast.Constant:
                    self.docstrings.add(id(node.value))  # bare strings do nothing: not scanned
            elif kind is Import:
                for alias in node.names:
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        self.aliases[top] = top
            elif kind is ImportFrom:
                if node.module and node.level == 0:
                    for alias in node.names:
                        if alias.name != "*":
                            self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif kind in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
                self.bound.add(node.name)
        # ``numpy`` is what matters for rules, whatever it was imported as
        self.bound -= set(self.aliases)

    def add(self, code: str, key: str, node: ast.AST, message: str) -> None:
        self.found.append((code, key, getattr(node, "lineno", 0), message))

    def dotted(self, node: ast.AST) -> str | None:
        """``np.random.rand`` -> ``numpy.random.rand`` when ``np`` is an imported name."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            parts.append(node.args[1].value)
            node = node.args[0]
            while isinstance(node, ast.Attribute):
                parts.append(node.attr)
                node = node.value
        if not isinstance(node, ast.Name):
            return None
        root = self.aliases.get(node.id)
        if root is None:
            if node.id in ("__builtins__", "builtins"):
                root = "builtins"
            else:
                return None
        return ".".join([root, *reversed(parts)])

    def root_is_import(self, node: ast.AST) -> str | None:
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        if isinstance(node, ast.Name) and (node.id in self.aliases or node.id == "__builtins__"):
            return node.id
        return None

    # --- imports
    def _import(self, module: str, node: ast.AST) -> None:
        hit = _module_code(module)
        if hit:
            code, key = hit
            self.add(code, f"import {key}", node, f"imports {module} ({CODES[code]})")
        for code, key in _attribute_codes(module):
            self.add(code, key, node, f"imports {module} ({CODES[code]})")
        self._protected_identifier(module.split(".")[0], node, f"imports {module}")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._import(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level:  # relative import: the candidate reaching for a sibling file
            self._protected_identifier(module.split(".")[0], node, f"imports .{module}")
            for alias in node.names:
                self._protected_identifier(alias.name, node, f"imports {alias.name} from .{module}")
            return
        hit = _module_code(module)
        if hit:
            code, key = hit
            self.add(code, f"import {key}", node, f"imports from {module} ({CODES[code]})")
        for alias in node.names:
            full = f"{module}.{alias.name}"
            if not hit:
                sub = _module_code(full)
                if sub:
                    self.add(sub[0], f"import {sub[1]}", node, f"imports {full} ({CODES[sub[0]]})")
            for code, key in _attribute_codes(full):
                self.add(code, key, node, f"imports {full} ({CODES[code]})")
            self._protected_identifier(alias.name, node, f"imports {alias.name}")
        self._protected_identifier(module.split(".")[0], node, f"imports {module}")

    # --- names and attributes
    def visit_Name(self, node: ast.Name) -> None:
        code = _BUILTINS.get(node.id)
        if code and node.id not in self.bound and node.id not in self.aliases:
            verb = "uses" if isinstance(node.ctx, ast.Load) else "rebinds"
            self.add(code, f"builtin {node.id}", node, f"{verb} {node.id} ({CODES[code]})")
        if node.id == "__builtins__" and not isinstance(node.ctx, ast.Load):
            self.add("builtins-assign", "__builtins__", node, "rebinds __builtins__")
        self._protected_identifier(node.id, node, f"refers to {node.id}")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in _DUNDER_INTROSPECTION:
            self.add("introspection", f"attr {node.attr}", node, f"uses .{node.attr} ({CODES['introspection']})")
        self._protected_identifier(node.attr, node, f"refers to .{node.attr}")
        if id(node) in self.inner_attributes:
            return  # only the outermost attribute of a chain is matched against module rules
        dotted = self.dotted(node)
        if dotted:
            for code, key in _attribute_codes(dotted):
                self.add(code, key, node, f"uses {dotted} ({CODES[code]})")
            if isinstance(node.ctx, ast.Load):
                hit = _module_code(dotted)  # ``importlib.util`` reached as an attribute
                if hit and hit[1] != dotted.split(".")[0]:
                    self.add(hit[0], f"import {hit[1]}", node, f"uses {dotted} ({CODES[hit[0]]})")
        if not isinstance(node.ctx, ast.Load):
            self._assigned_attribute(node)

    def _assigned_attribute(self, target: ast.Attribute | ast.Subscript) -> None:
        self._engine_state_write(target)
        root = self.root_is_import(target)
        if root is None:
            return
        dotted = self.dotted(target) if isinstance(target, ast.Attribute) else None
        shown = dotted or ast.unparse(target)
        if root == "__builtins__" or self.aliases.get(root) == "builtins" or (dotted or "").startswith("builtins."):
            self.add("builtins-assign", f"assign {shown}", target, f"replaces {shown} ({CODES['builtins-assign']})")
        else:
            self.add(
                "foreign-attr-assign", f"assign {shown}", target,
                f"assigns {shown} ({CODES['foreign-attr-assign']})",
            )

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if not isinstance(node.ctx, ast.Load):
            self._assigned_attribute(node)

    def _engine_state_write(self, target: ast.expr) -> None:
        """``ctx.<anything but state> = ...`` (or ``setattr(ctx, ...)``): the improver reaching for
        the engine's budgets and counts, which it is handed read-only."""
        node = target
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == ENGINE_CONTEXT:
                if node.attr != "state":
                    shown = ast.unparse(target)
                    self.add("engine-state-write", f"assign {shown}", target,
                             f"assigns {shown} ({CODES['engine-state-write']})")
                return
            node = node.value

    # --- calls
    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if (isinstance(func, (ast.Name, ast.Attribute)) and ast.unparse(func) in ("setattr", "object.__setattr__")
                and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id == ENGINE_CONTEXT):
            self.add("engine-state-write", f"call {ast.unparse(func)}(ctx)", node,
                     f"calls {ast.unparse(func)} on ctx ({CODES['engine-state-write']})")
        name = func.id if isinstance(func, ast.Name) and func.id not in self.bound else None
        dotted = self.dotted(func) if isinstance(func, (ast.Attribute, ast.Call)) else None
        if name and name in self.aliases:
            dotted, name = self.aliases[name], None
        if name in ("setattr", "delattr") and node.args:
            target = node.args[0]
            root = self.root_is_import(target)
            if root is not None:
                shown = ast.unparse(target)
                if root == "__builtins__" or self.aliases.get(root) == "builtins":
                    self.add(
                        "builtins-assign", f"{name} {shown}", node,
                        f"{name} on {shown} ({CODES['builtins-assign']})",
                    )
                else:
                    self.add(
                        "foreign-attr-assign", f"{name} {shown}", node,
                        f"{name} on module {shown} ({CODES['foreign-attr-assign']})",
                    )
        if name == "getattr" and len(node.args) >= 2:
            attr = node.args[1]
            if isinstance(attr, ast.Constant) and isinstance(attr.value, str):
                if attr.value in _DUNDER_INTROSPECTION:
                    self.add("introspection", f"attr {attr.value}", node, f"uses .{attr.value} via getattr")
                self._protected_identifier(attr.value, node, f"looks up {attr.value!r}")
                looked_up = self.dotted(node)
                for code, key in _attribute_codes(looked_up) if looked_up else ():
                    self.add(code, key, node, f"uses {looked_up} via getattr ({CODES[code]})")
            elif self.root_is_import(node.args[0]) is not None:
                shown = ast.unparse(node.args[0])
                self.add("introspection", f"getattr {shown}", node, f"looks up a computed attribute of {shown}")
        if name in ("__import__",) or dotted in ("importlib.import_module", "importlib.__import__"):
            self._dynamic_import(node)
        if name == "open" or dotted in _READ_CALLS:
            self._open(node, name or dotted or "open")
        if isinstance(func, ast.Attribute) and func.attr in _WRITE_METHODS:
            self.add("file-write", f"method {func.attr}", node, f"calls .{func.attr}() ({CODES['file-write']})")
        if isinstance(func, ast.Attribute) and func.attr == "open" and dotted is None and node.args:
            mode = node.args[0]
            if isinstance(mode, ast.Constant) and isinstance(mode.value, str) and set(mode.value) & set("wax+"):
                self.add("file-write", "open-write", node, f"opens a path for writing (mode {mode.value!r})")

    def _dynamic_import(self, node: ast.Call) -> None:
        arg = node.args[0] if node.args else None
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            self._import(arg.value, node)
        else:
            self.add("dynamic-code", "dynamic-import", node, "imports a module whose name is computed")

    def _open(self, node: ast.Call, what: str) -> None:
        path = node.args[0] if node.args else (_keyword(node, "file") or _keyword(node, "fname"))
        if what in ("open", "io.open", "codecs.open"):
            mode = node.args[1] if len(node.args) > 1 else _keyword(node, "mode")
            if mode is not None:
                if not (isinstance(mode, ast.Constant) and isinstance(mode.value, str)):
                    self.add("file-write", "open-write", node, "opens a file with a computed mode")
                elif set(mode.value) & set("wax+"):
                    self.add("file-write", "open-write", node, f"opens a file for writing (mode {mode.value!r})")
        if what == "os.open":
            return  # already flagged as a file-system call
        if path is None:
            return
        if isinstance(path, ast.Constant) and isinstance(path.value, (str, bytes)):
            text = path.value if isinstance(path.value, str) else path.value.decode("latin-1")
            outside = text.startswith(("/", "~", "\\")) or re.match(r"^[A-Za-z]:[\\/]", text)
            if outside or ".." in re.split(r"[\\/]", text):
                self.add("path-read", f"path {text}", node, f"{what}() of {text!r}, outside its own folder")
        else:
            self.add("path-read", "computed-path", node, f"{what}() of a computed path")

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self._protected_identifier(node.name, node, f"defines {node.name}")

    def visit_Raise(self, node: ast.Raise) -> None:
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if isinstance(exc, ast.Name) and exc.id in _PROCESS_EXIT_RAISES and exc.id not in self.bound:
            self.add("process-exit", f"raise {exc.id}", node, f"raises {exc.id} ({CODES['process-exit']})")

    # --- protected names
    def _protected_identifier(self, identifier: str, node: ast.AST, how: str) -> None:
        for p in self.protected:
            if identifier in p.identifiers:
                self.add(p.code, f"name {p.name}", node, f"{how}: {p.name} is {_WHAT[p.code]}")

    def visit_Constant(self, node: ast.Constant) -> None:
        if id(node) in self.docstrings or not isinstance(node.value, (str, bytes)):
            return
        text = node.value if isinstance(node.value, str) else node.value.decode("latin-1")
        for p in self.protected:
            if p.pattern.search(text):
                self.add(p.code, f"name {p.name}", node, f"a string names {p.name}, {_WHAT[p.code]}")


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


_WHAT = {"evaluator-reference": "part of the evaluator", "holdout-reference": "held-out data"}


@functools.lru_cache(maxsize=128)
def _scan(source: str, protected: tuple[_Protected, ...]) -> tuple[tuple[str, str, int, str], ...] | None:
    """Every occurrence in ``source``; None if it does not parse. Cached: a parent has many children."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    scanner = _Scanner(protected)
    scanner.scan(tree)
    return tuple(scanner.found)


def _changed_lines(parent: str, child: str) -> set[int]:
    """1-based lines of the child that the edit inserted or replaced."""
    matcher = difflib.SequenceMatcher(None, parent.splitlines(), child.splitlines(), autojunk=False)
    changed: set[int] = set()
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "insert"):
            changed.update(range(j1 + 1, j2 + 1))
    return changed


def review(
    parent: str,
    child: str,
    protected_names: Sequence[str] = (),
    holdout_names: Sequence[str] = (),
) -> list[Flag]:
    """The risky constructs ``child`` adds to ``parent``, sorted by line.

    ``protected_names``: names of the evaluator (``"evaluate"``, ``"evaluate_holdout"``,
    ``"evaluate.py"``) -> ``evaluator-reference``. ``holdout_names``: held-out data (file names,
    folder names) -> ``holdout-reference``. A name matches an identifier exactly (and
    ``evaluate.py`` also matches the module ``evaluate``); inside a string it matches as a
    whole word (identifier-like names) or as a substring (file names). Pass bare names: a path
    is reduced to its last part. Docstrings and other bare string statements are not scanned.

    A child that does not parse has no flags (the engine rejects it elsewhere); a parent that
    does not parse counts as empty, so everything in the child is new.
    """
    protected = tuple(
        [_Protected.make(n, "evaluator-reference") for n in protected_names if n]
        + [_Protected.make(n, "holdout-reference") for n in holdout_names if n]
    )
    found_child = _scan(child, protected)
    if not found_child:
        return []
    found_parent = _scan(parent, protected) or ()
    before: dict[tuple[str, str], int] = defaultdict(int)
    for code, key, _line, _message in found_parent:
        before[(code, key)] += 1
    by_key: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    for code, key, line, message in found_child:
        by_key[(code, key)].append((line, message))
    changed: set[int] | None = None
    flags: set[Flag] = set()
    for (code, key), occurrences in by_key.items():
        extra = len(occurrences) - before[(code, key)]
        if extra <= 0:
            continue
        if changed is None:
            changed = _changed_lines(parent, child)
        # the occurrences on edited lines first, then the latest ones
        ranked = sorted(occurrences, key=lambda o: (o[0] not in changed, -o[0]))
        for line, message in ranked[:extra]:
            flags.add(Flag(code, line, message))
    return sorted(flags, key=lambda f: (f.line, f.code, f.message))
