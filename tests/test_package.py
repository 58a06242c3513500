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


def test_public_names_load_on_access():
    code = (
        "import sys, skmixed\n"
        "assert 'sklearn' not in sys.modules\n"
        "from skmixed import *\n"
        "for name in skmixed.__all__:\n"
        "    assert getattr(skmixed, name) is globals()[name], name\n"
        "assert set(skmixed.__all__) <= set(dir(skmixed))\n"
        "from skmixed.mixed import MixedLMRegressor\n"
        "assert MixedLMRegressor is skmixed.MixedLMRegressor\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_dask_worker_side_imports_no_estimator():
    # What a Dask worker imports to run the fit's tasks: not scikit-learn
    # (~1 s to import in every worker process) nor the estimators.
    code = (
        "import sys\n"
        "import skmixed.mixed.dask_fit\n"
        "loaded = {'sklearn', 'skmixed.mixed.estimator'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
