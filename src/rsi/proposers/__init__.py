"""Proposers: what writes a child program from a parent (``base.Proposer``), and their registry.

rsi ships ``mutate`` (format-preserving code edits, offline). Others plug in by name::

    rsi.proposers.register("my-llm", MyProposer)      # or an "rsi.proposers" entry point
    # problem.toml: [run] proposers = ["mutate", "my-llm"]
"""

from __future__ import annotations

from ..registry import proposers as registry

register = registry.register
create = registry.create
get = registry.get
names = registry.names

__all__ = ["create", "get", "names", "register", "registry"]
