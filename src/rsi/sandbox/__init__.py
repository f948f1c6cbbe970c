"""Evaluating untrusted programs: a pool of warm, isolated workers.

    pool.py          EvaluatorPool: submit candidates, collect EvalResults; evaluate_fresh
    worker.py        the zygote that forks one sandboxed child per candidate
    isolation.py     what isolates a child (namespaces, uid, Landlock, seccomp) and the report
    namespaces.py    landlock.py    seccomp.py     the mechanisms, as raw system calls
    limits.py        the two hooks (prepare_worker, enter_sandbox) and the rlimits
    scorer.py        the trusted process that runs score(data) for the split contract
    guard.py         a plain evaluator in the trusted evaluation process, the candidate behind proxies
    codec.py         plain data across the boundary (no pickle)
    outcome.py       what a finished child means
    integrity.py     the evaluator's files, hashed and verified
    environment.py   the allow-list of environment variables for workers
    capabilities.py  doctor.py      what this machine offers; ``rsi doctor``
    protocol.py      procs.py       types.py       framing, process helpers, plain data types
"""
