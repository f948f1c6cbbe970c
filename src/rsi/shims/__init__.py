"""Stand-ins for the two modules that OpenEvolve and ShinkaEvolve evaluators import, so that their
problem folders run unchanged without either tool installed (``rsi.compat.install_shims`` puts this
folder at the *end* of ``sys.path``: an installed OpenEvolve or ShinkaEvolve is found first).

- ``openevolve.evaluation_result.EvaluationResult``: metrics and artifacts, as evaluators build it;
- ``shinka.core.run_shinka_eval``: runs the program's experiment function, validates and
  aggregates its results, and writes ``metrics.json`` and ``correct.json``.

Written for rsi from the tools' documented behaviour; no code of theirs is copied here.
"""
