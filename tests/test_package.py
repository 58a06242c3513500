"""The package namespace: submodules load on attribute access."""

import subprocess
import sys

import pytest


def test_submodules_load_on_attribute_access():
    # A fresh interpreter: in this one, other tests have imported them.
    code = (
        "import types, skmixed\n"
        "for name in ('datasets', 'metrics', 'summary'):\n"
        "    assert isinstance(getattr(skmixed, name), types.ModuleType), name\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_attribute_is_an_attribute_error():
    import skmixed

    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        skmixed.nothing  # noqa: B018
