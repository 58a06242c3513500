"""The ``>>>`` examples in the documentation pages (docs/**/*.rst) run and
print what the pages say.

A page that uses a public name that does not exist yet (an estimator still
being written) is skipped with the missing names in the reason, so the docs
can describe the agreed API ahead of the code without breaking the suite.
"""

import doctest
import importlib
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
GENERATED = {"_build", "generated", "auto_examples"}
PAGES = sorted(
    p for p in DOCS.rglob("*.rst") if not GENERATED & set(p.relative_to(DOCS).parts)
)
EXAMPLE_PAGES = [p for p in PAGES if ">>>" in p.read_text(encoding="utf-8")]

_IMPORT = re.compile(r"from (skmixed(?:\.\w+)*) import ([\w, ()]+)")
_ATTRIBUTE = re.compile(r"\b(skmixed(?:\.\w+)+)")


def _missing_names(text):
    """skmixed names used in the page's examples that cannot be imported."""
    examples = "\n".join(
        line.strip()[4:] for line in text.splitlines() if line.strip().startswith(">>>")
    )
    wanted = []
    for module, names in _IMPORT.findall(examples):
        wanted += [
            (module, n.strip()) for n in names.strip("()").split(",") if n.strip()
        ]
    for dotted in _ATTRIBUTE.findall(examples):
        module, _, name = dotted.rpartition(".")
        wanted.append((module, name))
    missing = []
    for module, name in wanted:
        try:
            found = hasattr(importlib.import_module(module), name)
        except ImportError:
            found = False
        if not found and not _is_module(f"{module}.{name}"):
            missing.append(f"{module}.{name}")
    return sorted(set(missing))


def _is_module(dotted):
    try:
        importlib.import_module(dotted)
    except ImportError:
        return False
    return True


def test_pages_found():
    names = {p.name for p in PAGES}
    assert {"index.rst", "from_lme4.rst", "why_hierarchical.rst"} <= names


@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_examples(page):
    text = page.read_text(encoding="utf-8")
    missing = _missing_names(text)
    assert not missing, f"the page uses names skmixed does not have: {missing}"
    import matplotlib

    matplotlib.use("Agg")
    failures, attempted = doctest.testfile(
        str(page),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
        report=True,
    )
    assert attempted > 0
    assert failures == 0, f"{failures} of {attempted} examples in {page.name} failed"
