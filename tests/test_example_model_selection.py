"""examples/model_selection.py runs, quickly, and reaches its conclusions."""

import runpy
import time
import warnings
from pathlib import Path

from skmixed import GroupsMissingWarning

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "model_selection.py"


def test_model_selection_example_runs(capsys):
    start = time.perf_counter()
    with warnings.catch_warnings():
        # Every path in the example keeps the groups.
        warnings.simplefilter("error", GroupsMissingWarning)
        runpy.run_path(str(EXAMPLE), run_name="__main__")
    elapsed = time.perf_counter() - start
    out = capsys.readouterr().out
    # New subjects: the marginal log-likelihood picks the random slope (also
    # with routed groups); future days: R² does too.
    assert out.count("best: MixedLM (Days | Subject)") == 2
    assert "best: (Days | Subject)" in out
    assert "marginal loglik" in out and "conditional loglik" in out
    # Generous bound for a shared machine; it takes about 5 s.
    assert elapsed < 30
