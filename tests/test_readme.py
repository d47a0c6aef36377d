"""The README's ```python blocks run as pasted, in order, as one reader's session.

The README is read top to bottom: the inference and teaching blocks use the sleepstudy fit
``m`` of the first block, so every block runs in one shared namespace, in the README's order.
The glmer blocks start with their own import and also run each in a fresh session in
tests/test_glmer_outputs.py; here they run in the session like the others.
"""
from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
BLOCKS = PYTHON_BLOCK.findall(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def session():
    """The reader's interpreter: one namespace, and the index of the first failed block."""
    return {"namespace": {"__name__": "__main__"}, "failed": None}


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 5
    assert all(block.strip() for block in BLOCKS)


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"block{i}" for i in
                                                           range(len(BLOCKS))])
def test_readme_block_runs_as_pasted(index, session, capsys):
    # A block after a failed one would fail for its predecessor's reason, not its own.
    if session["failed"] is not None:
        pytest.skip(f"block {session['failed']} failed")
    code = compile(BLOCKS[index], f"README.md block {index}", "exec")
    try:
        exec(code, session["namespace"])
    except BaseException:
        session["failed"] = index
        raise
    finally:
        plt.close("all")
        capsys.readouterr()


def test_every_name_a_block_uses_is_defined_by_then():
    """No block relies on a name the README never defines (``newdata``, ``m0``): the session
    test above would catch it too, but this says which name without running the fits."""
    import ast
    import builtins

    defined = set(dir(builtins))
    for index, block in enumerate(BLOCKS):
        tree = ast.parse(block)
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                defined.add(node.id)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                defined.update((a.asname or a.name).split(".")[0] for a in node.names)
        used = {node.id for node in ast.walk(tree)
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
        assert used <= defined, f"block {index} uses undefined {sorted(used - defined)}"
