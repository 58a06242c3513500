"""Make exact.json: the optimum of lme4's criterion for the one-term models
of no_intercept.json ("int", "weighted": ``y ~ 0 + x + (1 | g)``; "none":
``y ~ 0 + (1 | g)``), in
60-digit arithmetic (mpmath), run once by hand; not run by the tests.

For a scalar random intercept and one fixed column the profiled criterion
is closed-form in the per-group weighted sums (``A_j = θ² n_j + 1``,
``M_j = θ² / A_j``, ``T = B − Σ_j M_j c_jᵀ c_j`` for ``c_j = (Σx, Σy)``,
``r² = T_yy − T_xy² / T_xx``), so with enough digits no cancellation is
left: these are the numbers lme4's and ours approximate. lme4's own
evaluation at offset 1e8 is ~2.5e-7 off them (its θ stops 1e-5 short).
θ solves the criterion's stationarity in log θ (mpmath's findroot).
"""

import json
from pathlib import Path

import mpmath as mp
import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
mp.mp.dps = 60


def _criterion_of(frame, response, offset, weighted, reml, p=1):
    y = (frame[response] + offset).to_numpy()  # the doubles the fits see
    # p = 0: no fixed effect (x = 0 leaves T_xx = 0, which is skipped)
    x, g = frame["x"].to_numpy() * p, frame["g"].to_numpy()
    w = frame["w"].to_numpy() if weighted else np.ones(len(y))
    X, Y, W = ([mp.mpf(float(v)) for v in a] for a in (x, y, w))
    n = len(Y)
    B = [
        mp.fsum(wi * a * b for wi, a, b in zip(W, u, v, strict=True))
        for u, v in ((X, X), (X, Y), (Y, Y))
    ]
    groups = []
    for level in pd.unique(g):
        idx = np.flatnonzero(g == level)
        groups.append(
            (
                mp.fsum(W[i] for i in idx),
                mp.fsum(W[i] * X[i] for i in idx),
                mp.fsum(W[i] * Y[i] for i in idx),
            )
        )
    log_weights = mp.fsum(mp.log(wi) for wi in W)
    dof = n - p if reml else n

    def parts(theta):
        txx, txy, tyy = B
        logdet = mp.mpf(0)
        for nj, sx, sy in groups:
            a = theta * theta * nj + 1
            m = theta * theta / a
            logdet += mp.log(a)
            txx, txy, tyy = txx - m * sx * sx, txy - m * sx * sy, tyy - m * sy * sy
        pwrss = tyy - txy * txy / txx if p else tyy
        value = logdet + dof * (1 + mp.log(2 * mp.pi * pwrss / dof)) - log_weights
        if reml and p:
            value += mp.log(txx)
        return value, txx, txy, pwrss

    return parts, dof


def main():
    frame = pd.read_csv(HERE / "no_intercept.csv")
    refs = json.loads((HERE / "no_intercept.json").read_text())
    out = {}
    for key, ref in refs.items():
        if ref["model"] not in ("int", "weighted", "none"):
            continue
        p = 0 if ref["model"] == "none" else 1
        parts, dof = _criterion_of(
            frame, ref["response"], ref["offset"], ref["weights"], ref["reml"], p
        )

        def value(s, parts=parts):
            return parts(mp.exp(s))[0]

        start = mp.log(mp.mpf(ref.get("polished", ref)["theta"]))
        s = mp.findroot(lambda s, value=value: mp.diff(value, s), start)
        theta = mp.exp(s)
        crit, txx, txy, pwrss = parts(theta)
        sigma = mp.sqrt(pwrss / dof)
        out[key] = {
            "criterion": float(crit),
            "theta": [float(theta)],
            "sigma": float(sigma),
            "fixef": [float(txy / txx)] if p else [],
            "se": [float(sigma / mp.sqrt(txx))] if p else [],
        }
        print(key, out[key])
    (HERE / "exact.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
