"""rsi: a recursive self-improvement engine."""
__version__ = "0.1.0"
