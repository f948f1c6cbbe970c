"""A plain evaluator, guarded: the candidate runs in a process of its own; the evaluator gets proxies.

A plain ``evaluate(program_path)`` (rsi's, OpenEvolve's ``evaluator.py``, the functions a
ShinkaEvolve script calls) loads the candidate into its own process, where the candidate could
patch the scoring code, its helpers, numpy or builtins, and so choose its score. The guard keeps
the two apart without changing the evaluator:

- the evaluation child (trusted from here on: it runs the evaluator, never the candidate) installs
  the guard over ``builtins.exec`` and ``builtins.compile``. Whatever route the evaluator takes to
  run the program file in its process (``importlib.util.spec_from_file_location`` +
  ``exec_module``, ``import`` with the folder on ``sys.path``, ``runpy.run_path``,
  ``exec(open(path).read(), ns)``, ``exec(compile(text, path, "exec"))``) ends in an ``exec`` of
  code compiled from the candidate's text or file, and that ``exec`` does not run it: it forks
  a *candidate process* (already in the sandbox, like its parent), which runs the module and
  lists what it defines;
- the module the evaluator holds gets, in place of each function or class, a proxy: a call
  pickles its arguments (trusted data going to untrusted code), runs in the candidate process,
  and returns **plain data** through ``codec`` (numbers, strings, lists, dicts, numpy arrays,
  tuples, sets and dicts with other keys rebuilt here); anything else comes back as an opaque
  handle whose attributes and calls are again remote, with no ``__eq__``, ``__float__`` or
  ``__bool__`` of the candidate's. Module-level constants come back as plain values. An
  exception in the candidate is raised here as the builtin exception of that name (else
  ``CandidateError``), with the candidate's traceback in a note;
- bytecode caches are never read in the evaluation process (``sys.pycache_prefix`` points to a
  folder nobody can create), so a ``.pyc`` planted by the candidate cannot slip past ``compile``;
  the evaluation process is made non-dumpable, and ptrace is denied by seccomp anyway.

What the guard cannot do, said plainly: an evaluator that runs the program as a *subprocess*
(``subprocess.run([sys.executable, program_path])``, or multiprocessing with "spawn") trusts what
that process prints or writes, by design; an evaluator that builds new source around the
candidate's text and ``exec``\\s it would run the candidate in its own process, so the guard
refuses that (``GuardError``) rather than let it run; arguments are copies (a function that
changes a list in place changes its copy); a callable cannot be passed to the candidate. The
candidate process shares the task folder, so files the evaluator reads back after the candidate
ran are the candidate's word.
"""

import builtins
import io
import json
import os
import pickle
import signal
import struct
import sys
import threading
import time
import traceback
import types
from typing import Any

from . import codec
from .protocol import describe_exit, read_exact, write_all

_real_exec = builtins.exec
_real_compile = builtins.compile
# bound now, before any candidate runs: the candidate process answers through these even if the
# candidate replaced the builtins or json.dumps in its (own) process
_len, _type, _str, _dumps = len, type, str, json.dumps
# (no ``from __future__`` in this module: ``compile`` called from here would inherit its flags)

REQUEST = struct.Struct(">BIII")  # op, handle, bytes of the name, bytes of the payload (pickled arguments)
REPLY = struct.Struct(">BI")  # OK (a codec blob) or NOTE (JSON: a handle, an exception), bytes that follow
OPS = ("manifest", "getattr", "iter", "next", "call")
OK, NOTE = 0, 1
MAX_CHILDREN = 16  # candidate processes alive at once per evaluation (one per load of the program)
NO_BYTECODE = "/proc/rsi-no-bytecode"  # sys.pycache_prefix: a folder that cannot exist
TUPLE, SET, DICT = "\x01t", "\x01s", "\x01d"  # markers for what codec carries as lists
METHODS = ("__len__", "__getitem__", "__contains__")  # what a handle forwards besides calls
PR_SET_DUMPABLE = 4

_ERRORS = {name: cls for name, cls in vars(builtins).items()
           if isinstance(cls, type) and issubclass(cls, Exception) and not issubclass(cls, UnicodeError)}


class GuardError(RuntimeError):
    """The evaluator asked for something the guard cannot do safely, or the candidate process died."""


class CandidateError(RuntimeError):
    """An exception raised in the candidate's process whose type is not a builtin one."""


# ---------------------------------------------------------------- the evaluation process's side


class Guard:
    """Installed in an evaluation child before it calls a plain evaluator on ``program``."""

    def __init__(self, program: str, data_bytes: int) -> None:
        self.paths = {program, os.path.abspath(program), os.path.realpath(program)}
        with open(program, encoding="utf-8", errors="replace") as f:
            self.text = f.read().strip()
        self.data_bytes = data_bytes
        self.known: list = []  # code objects compiled from the candidate's text
        self.tainted: list = []  # compiled from text that wraps the candidate's in other code
        self.channels: list[Channel] = []
        self.calls = 0

    def install(self) -> None:
        builtins.exec = self._exec
        builtins.compile = self._compile
        sys.pycache_prefix = NO_BYTECODE
        try:
            import ctypes

            ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        except (OSError, AttributeError):
            pass

    @staticmethod
    def uninstall() -> None:
        builtins.exec = _real_exec
        builtins.compile = _real_compile

    def close(self) -> None:
        """Kill every candidate process (before the evaluator's result leaves this process)."""
        for channel in self.channels:
            channel.kill()

    # --- recognising the candidate

    def _classify(self, value: object) -> str | None:
        """"candidate" (the program itself), "inside" (code around the program's text) or None."""
        if isinstance(value, types.CodeType):
            if value.co_filename in self.paths or any(value is c for c in self.known):
                return "candidate"
            return "inside" if any(value is c for c in self.tainted) else None
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode("utf-8", errors="replace")
        if isinstance(value, str) and self.text:
            text = value.strip()
            if text == self.text:
                return "candidate"
            if self.text in text:
                return "inside"
        return None

    def _compile(self, source, filename, mode, flags=0, dont_inherit=False, optimize=-1, **kw):
        code = _real_compile(source, filename, mode, flags, dont_inherit, optimize, **kw)
        if isinstance(code, types.CodeType):
            kind = self._classify(source)
            if kind is None and isinstance(filename, (str, bytes, os.PathLike)) and os.fsdecode(filename) in self.paths:
                kind = "candidate"
            if kind == "candidate":
                self.known.append(code)
            elif kind == "inside":
                self.tainted.append(code)
        return code

    def _exec(self, source, globals=None, locals=None, /, **kw):
        if globals is None:
            frame = sys._getframe(1)
            globals, locals = frame.f_globals, frame.f_locals if locals is None else locals
        kind = self._classify(source)
        if kind == "candidate":
            self.load(source, globals if locals is None else locals)
            return None
        if kind == "inside":
            raise GuardError("the evaluator executes the program's text inside other code in its own process, "
                             "where the candidate could change how it is scored; load the program as a module "
                             "(importlib, as most evaluators do) or set [evaluator] guard = false (then a "
                             "candidate can forge its score)")
        if locals is None:
            return _real_exec(source, globals, **kw)
        return _real_exec(source, globals, locals, **kw)

    # --- a load of the program

    def load(self, code: object, namespace: dict) -> None:
        """Run the program in a new candidate process and fill ``namespace`` with proxies."""
        live = [c for c in self.channels if not c.dead]
        if len(live) >= MAX_CHILDREN:
            live[0].kill()
        channel = Channel(self, code, namespace)
        self.channels.append(channel)
        manifest = channel.manifest()
        for name, entry in manifest.items():
            namespace[name] = entry


class Channel:
    """The evaluation process's end of one candidate process."""

    def __init__(self, guard: Guard, code: object, namespace: dict) -> None:
        self.guard = guard
        self.lock = threading.Lock()
        self.dead = False
        self.why = ""
        self.refs: dict[int, int] = {}  # id(proxy function) -> handle
        self.label = str(namespace.get("__name__", "program"))
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        rng = sys.modules.get("random")
        state = rng.getstate() if rng is not None else None
        pid = os.fork()
        if pid == 0:  # ------------------------------------------------ the candidate process
            try:
                if rng is not None:
                    rng.setstate(state)  # random reseeds itself after a fork
                os.close(down_w)
                os.close(up_r)
                _close_others({0, 1, 2, down_r, up_w})
                _dumpable()  # its own /proc entries readable again (the evaluation process stays not)
                _serve(code, namespace, down_r, up_w, guard.data_bytes)
            finally:
                _flush()
                os._exit(0)
        os.close(down_r)
        os.close(up_w)
        self.pid, self.w, self.r = pid, down_w, up_r

    def kill(self) -> None:
        if not self.dead:
            self.dead = True
            self.why = self.why or " (the evaluation closed it)"
            for fd in (self.w, self.r):
                try:
                    os.close(fd)
                except OSError:
                    pass
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = 0

    def _died(self) -> GuardError:
        status = None
        deadline = time.monotonic() + 2.0  # it closed its end: it is ending (or closed it on purpose)
        while self.pid:
            try:
                done, found, usage = os.wait4(self.pid, os.WNOHANG if time.monotonic() < deadline else 0)
            except ChildProcessError:
                break
            if done:
                status, self.pid = found, 0
                _out_of_cpu(found, usage)
                break
            if time.monotonic() >= deadline - 0.01:
                os.kill(self.pid, signal.SIGKILL)
            time.sleep(0.002)
        how = describe_exit(status) if status is not None else "gone"
        self.why = f" (it ended: {how})"
        return GuardError(f"the candidate's process ended ({how}) before it answered")

    def request(self, op: str, hid: int = 0, name: str | None = None, payload: bytes = b"") -> Any:
        with self.lock:
            if self.dead:
                raise GuardError(f"the candidate's process is no longer running{self.why}")
            self.guard.calls += 1
            try:
                label = name.encode() if name else b""
                write_all(self.w, REQUEST.pack(OPS.index(op), hid, len(label), len(payload)) + label + payload)
                head = read_exact(self.r, REPLY.size)
                if head is None:
                    raise self._died()
                kind, size = REPLY.unpack(head)
                if size > self.guard.data_bytes + 64:
                    raise GuardError(f"the candidate's process sent a reply of {size} bytes, more than "
                                     f"{self.guard.data_bytes} (the data limit)")
                blob = read_exact(self.r, size) if size else b""
                if blob is None:
                    raise self._died()
            except BaseException:
                self.kill()
                raise
        return self._answer(kind, blob)

    def _answer(self, kind: int, blob: bytes) -> Any:
        if kind == OK:
            try:
                return _rebuild(codec.decode(blob, self.guard.data_bytes + 64), 0)
            except codec.DataError as exc:
                raise GuardError(f"the candidate's answer was refused: {exc}") from None
            except (TypeError, ValueError, RecursionError) as exc:
                raise GuardError(f"the candidate's answer was refused: {type(exc).__name__}: {exc}") from None
        try:
            reply = json.loads(blob) if kind == NOTE else None
        except (ValueError, RecursionError):
            reply = None
        if not isinstance(reply, dict):
            self.kill()
            raise GuardError("the candidate's process sent a malformed reply")
        hid, label = reply.get("handle"), reply.get("label")
        if type(hid) is int and hid > 0 and isinstance(label, str):
            cls = RemoteFunction if reply.get("callable") is True else RemoteObject
            return cls(self, hid, label[:200])
        name, message = reply.get("raise"), reply.get("message")
        if isinstance(name, str) and isinstance(message, str):
            if name == "StopIteration":
                raise StopIteration
            raise _candidate_error(name, message, reply.get("traceback"))
        self.kill()
        raise GuardError("the candidate's process sent a malformed reply")

    def manifest(self) -> dict:
        """What the program defined, as the module the evaluator holds will show it."""
        found = self.request("manifest")
        if not isinstance(found, dict):
            raise GuardError("the candidate's process sent a malformed list of names")
        out: dict[str, object] = {}
        for name, entry in found.items():
            if not isinstance(name, str) or not isinstance(entry, list) or not entry:
                continue
            if entry[0] == "value" and len(entry) == 2:
                out[name] = entry[1]
            elif entry[0] == "module" and len(entry) == 3 and isinstance(entry[1], str) and entry[1] in sys.modules:
                out[name] = sys.modules[entry[1]]  # our own copy of the module, not the candidate's
            elif entry[0] in ("module", "object") and type(entry[-1]) is int:
                out[name] = RemoteObject(self, entry[-1], name)
            elif entry[0] == "function" and len(entry) == 4 and type(entry[1]) is int:
                out[name] = self.function(entry[1], name, entry[2] if isinstance(entry[2], str) else None)
            elif entry[0] == "class" and len(entry) == 4 and type(entry[1]) is int:
                out[name] = RemoteFunction(self, entry[1], f"class {name}")
        return out

    def function(self, hid: int, name: str, doc: str | None):
        """A real function (inspect, threads and functools treat it as one) that calls the candidate's."""
        channel = self

        def proxy(*args, **kwargs):
            return channel.call(hid, args, kwargs)

        proxy.__name__ = proxy.__qualname__ = name
        proxy.__doc__ = doc
        proxy.__module__ = self.label
        self.refs[id(proxy)] = hid
        proxy.__rsi_guarded__ = True  # type: ignore[attr-defined]
        return proxy

    def call(self, hid: int, args: tuple, kwargs: dict, method: str | None = None) -> Any:
        return self.request("call", hid, method, self._pickle((args, kwargs)))

    def _persistent_id(self, obj: object) -> int | None:
        """Handles and proxies go back to the candidate process as references to its own objects."""
        if isinstance(obj, RemoteObject):
            if obj._rsi_channel is not self:
                raise GuardError("a handle from one load of the program was passed to another load")
            return obj._rsi_hid
        if isinstance(obj, types.FunctionType) and id(obj) in self.refs:
            return self.refs[id(obj)]
        return None

    def _pickle(self, value: object) -> bytes:
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.persistent_id = self._persistent_id  # type: ignore[method-assign]
        try:
            pickler.dump(value)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise TypeError(f"cannot hand this argument to the candidate's function: {exc}; arguments are copied "
                            "into the candidate's sandboxed process (rsi's guard), so they must be picklable data, "
                            "not functions defined inside other functions or open resources") from None
        data = buffer.getvalue()
        if len(data) > MAX_ARGUMENTS:
            raise GuardError(f"the arguments take {len(data)} bytes pickled, more than {MAX_ARGUMENTS}")
        return data


MAX_ARGUMENTS = 256 * 1024 * 1024


class RemoteObject:
    """An object that lives in the candidate's process: attributes, iteration, ``len`` and
    indexing are asked of it there; comparisons and conversions are this proxy's own (identity,
    no ``float``), so a candidate's ``__eq__`` or ``__float__`` never decides anything here."""

    __slots__ = ("_rsi_channel", "_rsi_hid", "_rsi_label")

    def __init__(self, channel: Channel, hid: int, label: str) -> None:
        object.__setattr__(self, "_rsi_channel", channel)
        object.__setattr__(self, "_rsi_hid", hid)
        object.__setattr__(self, "_rsi_label", label)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._rsi_channel.request("getattr", self._rsi_hid, name)

    def __setattr__(self, name: str, value: object) -> None:
        self._rsi_channel.call(self._rsi_hid, (name, value), {}, "__setattr__")

    def __iter__(self):
        return self._rsi_channel.request("iter", self._rsi_hid)

    def __next__(self):
        return self._rsi_channel.request("next", self._rsi_hid)

    def __len__(self) -> int:
        return self._rsi_channel.call(self._rsi_hid, (), {}, "__len__")

    def __getitem__(self, key: object) -> Any:
        return self._rsi_channel.call(self._rsi_hid, (key,), {}, "__getitem__")

    def __contains__(self, key: object) -> bool:
        return self._rsi_channel.call(self._rsi_hid, (key,), {}, "__contains__") is True

    def __repr__(self) -> str:
        return f"<{self._rsi_label} in the candidate's sandboxed process>"


class RemoteFunction(RemoteObject):
    """A callable of the candidate's (a class, a callable object): calling it runs there."""

    __slots__ = ()

    def __call__(self, *args, **kwargs) -> Any:
        return self._rsi_channel.call(self._rsi_hid, args, kwargs)


def _candidate_error(name: str, message: str, text: object) -> Exception:
    """The exception the candidate raised, as the builtin of that name (else ``CandidateError``)."""
    kind = _ERRORS.get(name)
    error: Exception
    try:
        error = kind(message[:2000]) if kind is not None else CandidateError(f"{name[:100]}: {message[:2000]}")
    except Exception:  # noqa: BLE001 - an exception type that wants other arguments
        error = CandidateError(f"{name[:100]}: {message[:2000]}")
    if isinstance(text, str):
        error.add_note("in the candidate's process (rsi's guard):\n" + text[-2000:])
    return error


def _rebuild(value: Any, depth: int) -> object:
    """Tuples, sets and dicts with non-string keys from their markers (trusted: plain data in)."""
    if depth > codec.MAX_DEPTH + 2:
        raise ValueError("nested too deep")
    t = type(value)
    if t is list:
        return [_rebuild(v, depth + 1) for v in value]
    if t is dict:
        assert isinstance(value, dict)
        if len(value) == 1:
            ((key, inner),) = value.items()
            if type(inner) is list:
                if key == TUPLE:
                    return tuple(_rebuild(v, depth + 1) for v in inner)
                if key == SET:
                    return {_rebuild(v, depth + 1) for v in inner}
                if key == DICT:
                    out = {}
                    for pair in inner:
                        if type(pair) is not list or len(pair) != 2:
                            raise ValueError("a malformed dict")
                        out[_rebuild(pair[0], depth + 1)] = _rebuild(pair[1], depth + 1)
                    return out
        return {k: _rebuild(v, depth + 1) for k, v in value.items()}
    return value


def _out_of_cpu(status: int, usage) -> None:
    """A candidate process killed for its CPU time makes the evaluation a CPU timeout: this
    process ends the same way (its rusage counts the candidate's, reaped)."""
    import resource

    if not os.WIFSIGNALED(status):
        return
    soft = resource.getrlimit(resource.RLIMIT_CPU)[0]
    used = usage.ru_utime + usage.ru_stime
    # the rusage split can read ~10% low on a loaded machine (see tests/test_pool.py)
    by_cpu = soft != resource.RLIM_INFINITY and used >= 0.85 * soft
    if os.WTERMSIG(status) == signal.SIGXCPU or (os.WTERMSIG(status) == signal.SIGKILL and by_cpu):
        _flush()
        signal.signal(signal.SIGXCPU, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGXCPU)  # the worker reads SIGXCPU as the CPU limit, whatever rusage says
        os.kill(os.getpid(), signal.SIGKILL)


def _dumpable() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - e.g. "File too large" after a flood
            pass


def _close_others(keep: set[int]) -> None:
    low = 3
    for fd in sorted(keep | {1 << 16}):
        if fd >= low:
            os.closerange(low, min(fd, 1 << 16))
            low = fd + 1


# ---------------------------------------------------------------- the candidate process


def _lower(value: Any, depth: int = 0) -> object:
    """``value`` with tuples, sets and dicts of other keys as markers codec can carry."""
    if depth > codec.MAX_DEPTH:
        raise codec.DataError("nested too deep")
    t = type(value)
    if t is tuple:
        return {TUPLE: [_lower(v, depth + 1) for v in value]}
    if t is list:
        return [_lower(v, depth + 1) for v in value]
    if t is set or t is frozenset:
        return {SET: [_lower(v, depth + 1) for v in value]}
    if t is dict:
        assert isinstance(value, dict)
        if all(type(k) is str and not k.startswith(("\x00", "\x01")) for k in value):
            return {k: _lower(v, depth + 1) for k, v in value.items()}
        return {DICT: [[_lower(k, depth + 1), _lower(v, depth + 1)] for k, v in value.items()]}
    return value


def _serve(code: Any, namespace: dict, rfd: int, wfd: int, limit: int) -> None:
    """Run the program, then answer the evaluation process until it closes the pipe."""
    Guard.uninstall()
    objects: dict[int, object] = {}

    def handle(obj: object) -> int:
        hid = _len(objects) + 1
        objects[hid] = obj
        return hid

    def send(kind: int, blob: bytes) -> None:
        _flush()  # what the candidate printed lands in the task's output before the evaluator goes on
        write_all(wfd, REPLY.pack(kind, _len(blob)) + blob)

    def note(header: dict) -> None:
        send(NOTE, _dumps(header).encode())

    def answer(value: object) -> None:
        try:
            blob = codec.encode(_lower(value), limit)
        except (codec.DataError, RecursionError):
            note({"handle": handle(value), "callable": callable(value) is True, "label": _label(value)})
            return
        send(OK, blob)

    def failed(exc: BaseException) -> None:
        try:
            message = _str(exc)
            message = message if _type(message) is _str else ""
        except Exception:  # noqa: BLE001 - a hostile __str__
            message = ""
        name = _type(exc).__name__
        note({"raise": name if _type(name) is _str else "Exception", "message": message[:4000],
              "traceback": traceback.format_exc()[-4000:]})

    def persistent_load(pid):
        return objects[pid]

    loaded: BaseException | None = None
    try:
        _real_exec(code, namespace)
    except BaseException as exc:  # noqa: BLE001 - reported to the evaluator as its load failing
        loaded = exc
    while True:
        head = read_exact(rfd, REQUEST.size)
        if head is None:
            return
        code_op, hid, name_size, size = REQUEST.unpack(head)
        body = read_exact(rfd, name_size + size) if name_size + size else b""
        if body is None:
            return
        op, name, blob = OPS[code_op], body[:name_size].decode(), body[name_size:]
        try:
            if op == "manifest":
                if loaded is not None:
                    raise loaded
                send(OK, codec.encode(_manifest(namespace, handle, limit), limit))
                continue
            target = objects[hid]
            if op == "getattr":
                result = getattr(target, name)
            elif op == "iter":
                result = iter(target)  # type: ignore[call-overload]
            elif op == "next":
                result = next(target)  # type: ignore[call-overload]
            else:  # call
                unpickler = pickle.Unpickler(io.BytesIO(blob))
                unpickler.persistent_load = persistent_load  # type: ignore[method-assign]
                args, kwargs = unpickler.load()
                if name in METHODS and not hasattr(type(target), name):
                    raise TypeError(f"'{type(target).__name__}' object does not support {name}")
                fn = getattr(target, name) if name in (*METHODS, "__setattr__") else target
                result = fn(*args, **kwargs)  # type: ignore[operator]
        except BaseException as exc:  # noqa: BLE001 - the candidate's failure, raised in the evaluator
            failed(exc)
            continue
        answer(result)


def _label(value: object) -> str:
    t = type(value)
    return f"{getattr(t, '__qualname__', 'object')} object"


def _manifest(namespace: dict, handle, limit: int) -> dict:
    out: dict[str, list] = {}
    for name, value in list(namespace.items()):
        if not isinstance(name, str) or name == "__builtins__" or \
                (name.startswith("__") and name not in ("__all__", "__doc__", "__version__")):
            continue
        if isinstance(value, types.ModuleType):
            out[name] = ["module", str(getattr(value, "__name__", "")), handle(value)]
        elif isinstance(value, type):
            out[name] = ["class", handle(value), None, None]
        elif callable(value):
            doc = getattr(value, "__doc__", None)
            out[name] = ["function", handle(value), doc if isinstance(doc, str) else None, None]
        else:
            try:
                lowered = _lower(value)
                codec.encode(lowered, limit)
                out[name] = ["value", lowered]
            except (codec.DataError, RecursionError):
                out[name] = ["object", handle(value)]
    return out
