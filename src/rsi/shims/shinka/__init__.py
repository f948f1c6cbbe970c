"""rsi's stand-in for the ``shinka`` package: only ``shinka.core.run_shinka_eval``."""
