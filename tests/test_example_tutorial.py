"""The sleepstudy tutorial runs end to end and prints R's numbers."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "sleepstudy_tutorial.py"


@pytest.fixture(scope="module")
def output():
    pytest.importorskip("matplotlib")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, str(SCRIPT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def section(text, title):
    """The printed text from the heading ``title`` to the next heading."""
    start = text.index(title)
    end = text.find("=" * 78 + "\n", text.index("\n" + "=" * 78, start) + 80)
    return text[start : end if end > 0 else None]


def number_after(pattern, text):
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not printed"
    return float(match.group(1))


def test_simpsons_paradox(output):
    assert "correlation of the group means: -1.000" in output
    assert "slope fitted to the group means:         -1.000" in output
    assert "slope with a fixed effect per group:      +1.000" in output


def test_lm_r_squared(output):
    # R: summary(lm(Reaction ~ Days)) and lm(Reaction ~ Days + Subject)
    pooled = section(output, "2. Pooled regression")
    fixed = section(output, "3. Fixed effects")
    assert number_after(r"Multiple R-squared:\s+([\d.]+)", pooled) == 0.2865
    assert number_after(r"Multiple R-squared:\s+([\d.]+)", fixed) == 0.7277


def test_random_intercept_variances(output):
    text = section(output, "4. Random intercept")
    # lme4: Subject (Intercept) variance 1378.2, residual 960.5
    assert number_after(r"Subject\s+\(Intercept\)\s+([\d.]+)", text) == 1378.2
    assert number_after(r"Residual\s+([\d.]+)", text) == 960.5
    assert number_after(r"'marginal': ([\d.]+)", text) == pytest.approx(0.280, abs=5e-4)
    assert number_after(r"'conditional': ([\d.]+)", text) == pytest.approx(
        0.704, abs=5e-4
    )


def test_random_slope_variances(output):
    text = section(output, "5. Random slope")
    # lme4: 612.10 and 35.07, correlation 0.066; the optimum is flat, so
    # compare at the printed precision of the tutorial's reference numbers.
    assert number_after(r"Subject\s+\(Intercept\)\s+([\d.]+)", text) == pytest.approx(
        612.1, abs=0.05
    )
    assert number_after(r"Days\s+([\d.]+)\s+[\d.]+\s+[\d.]+", text) == 35.07
    assert number_after(r"Days\s+[\d.]+\s+[\d.]+\s+([\d.]+)", text) == pytest.approx(
        0.066, abs=0.005
    )
    assert number_after(r"'marginal': ([\d.]+)", text) == pytest.approx(0.279, abs=5e-4)
    assert number_after(r"'conditional': ([\d.]+)", text) == pytest.approx(
        0.799, abs=5e-4
    )


def test_three_level_models_are_singular(output):
    for title in ("6. Three levels", "6b. Three levels"):
        text = section(output, title)
        assert "boundary (singular) fit" in text
        assert "singular fit: True" in text


def test_model_table_and_lrt(output):
    assert "0.280 / 0.704" in output
    assert "0.279 / 0.799" in output
    # anova(m_int, m_slope) with ML refits: Chisq 42.139 on 2 df
    lrt = section(output, "Likelihood-ratio test")
    assert number_after(r"m2\s+6(?:\s+[-\d.]+){4}\s+([\d.]+)", lrt) == pytest.approx(
        42.1393, abs=1e-4
    )


def test_figures_saved(output):
    for name in (
        "sleepstudy_fits.png",
        "sleepstudy_ranef.png",
        "sleepstudy_residuals.png",
    ):
        assert f"saved {name}" in output
        assert (SCRIPT.parent / name).stat().st_size > 10_000
