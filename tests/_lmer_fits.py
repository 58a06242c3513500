"""Fits of the lmer reference cases in tests/data, shared by the inference tests.

Each case is fitted twice: our own fit, and a copy moved to lme4's θ
(``_results_at``). At lme4's θ every derived number must match R to the
issue's tolerance: that checks our computation. At our own optimum (equal or
lower criterion than lme4's; θ may differ by ~1e-5 on flat surfaces) the
tolerance is the issue's too, except for quantities that such a change of θ
moves by more (stated where used).
"""

import copy
import json
import re
import warnings
from functools import cache
from pathlib import Path

import numpy as np

from skmixed import MixedLMRegressor
from skmixed.datasets import (
    load_dyestuff,
    load_dyestuff2,
    load_pastes,
    load_penicillin,
    load_sleepstudy,
)

DATA = Path(__file__).parent / "data"
LOADERS = {
    "sleepstudy": lambda: load_sleepstudy(),
    "sleepstudy_school": lambda: load_sleepstudy(school=True),
    "Penicillin": load_penicillin,
    "Pastes": load_pastes,
    "Dyestuff": load_dyestuff,
    "Dyestuff2": load_dyestuff2,
}


def lmer_cases():
    """Stems of the reference files with ``kind == "lmer"``."""
    out = []
    for path in sorted(DATA.glob("*.json")):
        ref = json.loads(path.read_text())
        if isinstance(ref, dict) and ref.get("kind") == "lmer":
            out.append(path.stem)
    return out


def reference(name):
    return json.loads((DATA / f"{name}.json").read_text())


def parse_formula(formula):
    """'y ~ x + (x | g)' -> (response, features, random-effects spec, groups)."""
    response, rhs = (s.strip() for s in formula.split("~"))
    bars = re.findall(r"\([^()]*\|[^()]*\)", rhs)
    fixed = rhs
    for bar in bars:
        fixed = fixed.replace(bar, "")
    features = [t.strip() for t in fixed.split("+") if t.strip() not in ("", "1")]
    spec = " + ".join(bars)
    groups = []
    for bar in re.findall(r"\|\|?([^)]*)\)", spec):
        for name in re.split(r"[:/]", bar):
            if name.strip() not in groups:
                groups.append(name.strip())
    return response, features, spec, groups


def fit_formula(formula, dataset, reml):
    df = LOADERS[dataset]()
    response, features, spec, groups = parse_formula(formula)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MixedLMRegressor(spec, reml=reml).fit(
            df[features + groups], df[response]
        )


@cache
def _fits(name):
    ref = reference(name)
    ours = fit_formula(ref["formula"], ref["dataset"], ref["REML"])
    at_lme4 = copy.deepcopy(ours)
    at_lme4._results_at(np.array(ref["theta"]["values"], dtype=float))
    return ref, ours, at_lme4


def fits(name):
    """(reference, our fit, our fit moved to lme4's θ) -- fresh copies."""
    ref, ours, at_lme4 = _fits(name)
    return ref, copy.deepcopy(ours), copy.deepcopy(at_lme4)


def relative(a, b):
    """Largest relative difference (absolute where the reference is 0)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = np.where(b == 0, 1.0, np.abs(b))
    return float(np.max(np.abs(a - b) / scale))


def check_close(get, ours, at_lme4, expected, tol, tol_ours=None):
    """Within ``tol`` of R at lme4's θ, and within ``tol_ours`` at our θ.

    ``tol_ours`` (default ``tol``) is looser where a quantity is sensitive
    to the ~1e-5 differences between our optimum and lme4's (p-values of
    1e-18 move by 1e-3 when their t statistic moves by 1e-5).
    """
    at = get(at_lme4)
    assert relative(at, expected) <= tol, (at, expected)
    mine = get(ours)
    limit = tol if tol_ours is None else tol_ours
    assert relative(mine, expected) <= limit, (mine, expected)
