"""rsi's stand-in for the ``openevolve`` package: only ``openevolve.evaluation_result``."""
