"""Self-improvement: rsi improving its own search policy.

    suite/          the problems an improver is measured on (train / validation / test splits)
    metautil.py     meta-utility: inner searches in the sandbox, re-scored by trusted code
    inner.py        one inner search: a Run executed in-process (inside the sandboxed child)
    protocol.py     the framing between metautil and its two evaluator files (evaluators/)
    selfimprove.py  `rsi self-improve`: the outer run, the adoption gate, the generations
    report.py       the generation table, the curves, the test measurements (report only)
    cli.py          the command's parser
"""
