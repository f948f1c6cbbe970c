import pytest

from rsi.errors import ProgramError
from rsi.program import code_size, edit_violation, editable_regions, fingerprint, syntax_error, unified_diff

SRC = """import numpy as np

# EVOLVE-BLOCK-START
def f(x):
    return x + 1
# EVOLVE-BLOCK-END

def frozen():
    return 42
"""


def test_regions_between_markers():
    assert [(r.first, r.last) for r in editable_regions(SRC)] == [(4, 5)]


def test_whole_file_without_markers():
    assert [(r.first, r.last) for r in editable_regions("a = 1\nb = 2\n")] == [(1, 2)]


@pytest.mark.parametrize("bad, words", [
    ("# EVOLVE-BLOCK-START\nx = 1\n", "never closed"),
    ("x = 1\n# EVOLVE-BLOCK-END\n", "without a matching"),
    ("# EVOLVE-BLOCK-START\n# EVOLVE-BLOCK-START\n# EVOLVE-BLOCK-END\n", "inside a block"),
])
def test_unbalanced_markers_are_named(bad, words):
    with pytest.raises(ProgramError, match=words):
        editable_regions(bad)


def test_edit_inside_block_is_legal():
    assert edit_violation(SRC, SRC.replace("x + 1", "x * 2 + 1\n    # more")) is None


def test_edit_outside_block_is_rejected():
    assert "outside" in edit_violation(SRC, SRC.replace("return 42", "return 43"))
    assert "outside" in edit_violation(SRC, SRC.replace("import numpy as np", "import os"))


def test_removing_markers_is_rejected():
    assert "markers" in edit_violation(SRC, SRC.replace("# EVOLVE-BLOCK-END\n", ""))


def test_fingerprint_ignores_formatting_and_comments():
    a = "def f(x):\n    return x+1\n"
    b = "def f(x):\n    # a comment\n    return (x + 1)\n"
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint(a.replace("1", "2"))


def test_syntax_error_and_diff_and_size():
    assert syntax_error("def f(:\n") is not None
    assert syntax_error("x = 1\n") is None
    assert "+    return x * 2" in unified_diff(SRC, SRC.replace("x + 1", "x * 2"))
    assert code_size(SRC) == 5
