"""The environment a worker (and so every candidate) starts with: an allow-list, no secrets.

A candidate can read its whole process memory, and ``/proc/self/environ`` shows the environment
the process was *started* with even after ``os.environ`` is cleared; so secrets (API keys for the
LLM proposer, cloud tokens) must never reach the worker process at all. Only the variables below
pass from rsi's environment; ``EvaluatorPool(env=...)`` adds others explicitly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

ALLOWED = {
    "PATH", "LANG", "LANGUAGE", "TZ", "TERM", "HOME", "USER", "LOGNAME", "SHELL", "TMPDIR",
    "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE",
    "PYTHONWARNINGS", "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONFAULTHANDLER", "PYTHONNOUSERSITE",
    "PYTHONMALLOC", "PYTHONDEVMODE", "PYTHONSAFEPATH", "SOURCE_DATE_EPOCH", "CUDA_VISIBLE_DEVICES",
    "RSI_SANDBOX_DISABLE", "COVERAGE_PROCESS_START",
}
# NPY_: numpy's own switches (NPY_DISABLE_CPU_FEATURES narrows its SIMD dispatch; `make test` runs
# the numeric tests that way, and an evaluation must then compute the way its caller does).
PREFIXES = ("LC_", "OMP_", "OPENBLAS_", "MKL_", "NUMEXPR_", "NUMBA_", "BLIS_", "VECLIB_", "NPY_")
SECRET = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE|SESSION", re.IGNORECASE)


def worker_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The allowed part of ``environ``; a name that looks like a secret never passes."""
    return {k: v for k, v in environ.items()
            if (k in ALLOWED or k.startswith(PREFIXES)) and not SECRET.search(k)}
