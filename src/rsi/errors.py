"""Errors that rsi shows to a user: each names the problem and the fix."""


class RsiError(Exception):
    """Base class: the message is shown to the user as it stands, without a traceback."""


class ProblemError(RsiError):
    """A problem folder cannot be used (missing file, missing function, bad problem.toml)."""


class ProgramError(RsiError):
    """A program's source is malformed for rsi (e.g. unbalanced EVOLVE-BLOCK markers)."""


class RunError(RsiError):
    """A run folder cannot be created, read or resumed."""


class SearchError(RsiError):
    """A search was used against its protocol (``ask``/``tell``), or a driver lost track of a task."""


class ProposalFailed(Exception):
    """A proposer could not make a child (no applicable site, bad LLM answer...).

    Not a user error: the loop records it as an 'invalid' attempt with this reason. What the attempt
    spent (``tokens``, ``cost``) still counts against the run's budgets; ``prompt`` and ``reply``
    are stored with the attempt.
    """

    def __init__(self, reason: str, *, tokens: int = 0, cost: float = 0.0, prompt: str | None = None,
                 reply: str | None = None, seconds: float = 0.0, prompt_tokens: int = 0, completion_tokens: int = 0):
        super().__init__(reason)
        self.tokens, self.cost, self.prompt, self.reply, self.seconds = tokens, cost, prompt, reply, seconds
        self.prompt_tokens, self.completion_tokens = prompt_tokens, completion_tokens
