"""examples/glmm_model_selection.py runs and reaches its conclusions.

This is also the test that GridSearchCV with GroupKFold(5) and
marginal_log_likelihood picks the true random-effects structure of a binary
outcome: (x | g) on data simulated with a random slope of SD 1 (60 groups of
20), and (1 | g) on the same design with slope SD 0.
"""

import re
import runpy
import warnings
from pathlib import Path

from skmixed import GroupsMissingWarning

EXAMPLE = (
    Path(__file__).resolve().parent.parent / "examples" / "glmm_model_selection.py"
)


def _table(lines, title):
    """The printed cv table after ``title``: {structure: [scores]}."""
    start = lines.index(title) + 3
    rows = {}
    for line in lines[start : start + 2]:
        name = line[: line.index(")") + 1]
        rows[name] = [float(v) for v in line[len(name) :].split()]
    return rows


def test_glmm_model_selection_example(capsys):
    with warnings.catch_warnings():
        # Every path in the example keeps the groups.
        warnings.simplefilter("error", GroupsMissingWarning)
        runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    lines = out.split("\n")
    slope = _table(lines, "Random slope in the truth (SD 1):")
    flat = _table(lines, "No random slope in the truth:")
    # marginal log-likelihood: higher by several units with the true slope,
    # lower (a little) for the superfluous one
    assert slope["(x | g)"][0] - slope["(1 | g)"][0] > 3
    assert flat["(1 | g)"][0] > flat["(x | g)"][0]
    # population-level log loss and AUC hardly tell them apart
    assert abs(slope["(x | g)"][1] - slope["(1 | g)"][1]) < 0.02
    assert abs(slope["(x | g)"][2] - slope["(1 | g)"][2]) < 0.02
    assert "best: (x | g)" in out and "best: (1 | g)" in out
    # the refitted model's summary and odds-ratio table
    assert "Family: binomial  ( logit )" in out
    assert re.search(r"Odds Ratios\s+CI\s+p", out)
    assert re.search(r"σ²\s+3\.29", out)
    assert re.search(r"N g\s+60", out)
