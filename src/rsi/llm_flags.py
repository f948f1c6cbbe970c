"""The command line's ``--llm-*`` flags (``rsi run`` and ``rsi self-improve``): a ``[proposer.llm]`` table."""

from __future__ import annotations

import argparse
from pathlib import Path

from .errors import RsiError


def add_llm_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--llm-url", metavar="URL", help="an OpenAI-compatible endpoint for the llm proposer")
    p.add_argument("--llm-model", metavar="NAME", help="the model name to ask the endpoint for")
    p.add_argument("--llm-gguf", metavar="PATH", help="a GGUF model file run in process ('smollm2': the packaged one)")
    p.add_argument("--llm-key-env", metavar="VAR", help="environment variable holding the endpoint's API key")
    p.add_argument("--llm-set", metavar="KEY=VALUE", action="append",
                   help="any [proposer.llm] setting, value in TOML (repeatable): grammar=gbnf, 'formats=[\"fill\"]'")


def any_llm_flag(args: argparse.Namespace) -> bool:
    return any((args.llm_url, args.llm_model, args.llm_gguf, args.llm_key_env, args.llm_set))


def llm_table(args: argparse.Namespace, data: dict) -> bool:
    """Apply --llm-url/--llm-model/--llm-gguf/--llm-key-env/--llm-set to the ``[proposer.llm]`` table of
    the settings ``data`` (in place); whether any was given."""
    import tomllib

    llm = {key: value for key, value in (("url", args.llm_url), ("model", args.llm_model),
                                         ("gguf", args.llm_gguf), ("api_key_env", args.llm_key_env)) if value}
    if llm:
        if args.llm_gguf and (args.llm_url or args.llm_model):
            raise RsiError("give either --llm-gguf (a model file) or --llm-url and --llm-model (an endpoint), not both")
        table = data.setdefault("proposer", {}).setdefault("llm", {})
        for key in ("url", "model", "gguf", "backend"):
            table.pop(key, None)
        if args.llm_gguf and args.llm_gguf != "smollm2":
            llm["gguf"] = str(Path(args.llm_gguf).expanduser().resolve())
        table.update(llm, backend="llama-cpp" if args.llm_gguf else "openai")
    for item in args.llm_set or []:  # KEY=VALUE, the value in TOML (a bare word is a string)
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RsiError(f"--llm-set {item!r}: write KEY=VALUE, e.g. --llm-set grammar=gbnf or --llm-set "
                           "'formats=[\"fill\"]'")
        try:
            parsed = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value
        data.setdefault("proposer", {}).setdefault("llm", {})[key.strip()] = parsed
    return bool(llm or args.llm_set)
