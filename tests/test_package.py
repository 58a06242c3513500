"""The package namespace: submodules load on attribute access."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("name", ["datasets", "metrics", "summary"])
def test_submodule_loads_on_attribute_access(name):
    # A fresh interpreter: in this one, other tests have imported them.
    code = f"import skmixed, types; assert isinstance(skmixed.{name}, types.ModuleType)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_attribute_is_an_attribute_error():
    import skmixed

    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        skmixed.nothing  # noqa: B018
