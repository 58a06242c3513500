"""examples/from_lme4.py runs end to end and prints lmerTest's numbers."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "from_lme4.py"


@pytest.fixture(scope="module")
def output():
    result = subprocess.run(
        [sys.executable, str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def section(text, title):
    """The printed text from the heading ``title`` to the next heading."""
    start = text.index(title)
    end = text.find("=" * 78, text.index("=" * 78, start) + 79)
    return text[start : end if end > 0 else None]


def row(text, label):
    """The numbers printed on the table row that starts with ``label``."""
    match = re.search(rf"^{re.escape(label)}\s+(.*)$", text, flags=re.M)
    assert match, f"no row {label!r}"
    return [float(v) for v in match.group(1).split()]


def test_sleepstudy_models_as_formulas(output):
    # R: summary(lm(Reaction ~ Days)); lm(Reaction ~ Days + Subject);
    # lmer(Reaction ~ Days + (Days | Subject))
    assert "lm(formula = Reaction ~ Days)" in output
    assert "Multiple R-squared:  0.2865" in section(output, "lm(Reaction ~ Days)")
    assert "Multiple R-squared: 0.7277" in output
    assert row(section(output, "lm(Reaction ~ Days + Subject)"), "Subject309") == [
        -126.901
    ]
    text = section(output, "lmer(Reaction ~ Days + (1 | Subject))")
    assert "Formula: Reaction ~ Days + (1 | Subject)" in text
    # lme4: Subject (Intercept) variance 1378.2, sd 37.12
    assert re.search(r"Subject\s+\(Intercept\)\s+1378\.2\s+37\.12", text)
    text = section(output, "lmer(Reaction ~ Days + (Days | Subject))")
    assert "REML criterion at convergence: 1743.6" in text
    # anova(m1, m2): Chisq 42.139 on 2 df (lme4)
    lrt = section(output, "anova(m_intercept, m_slope)")
    assert row(lrt, "m2")[5] == pytest.approx(42.139299, abs=1e-5)


def test_from_formula_grid_search(output):
    text = section(output, "MixedLMRegressor.from_formula")
    assert "fixed_effects='Days', random_effects='(1 | Subject)'" in text
    assert "best random part: (Days | Subject)" in text


def test_oats_per_term_anova_is_lmertests(output):
    text = section(output, "lmer(yield ~ nitro + Variety + (1 | Block/Variety))")
    assert "Formula: yield ~ nitro + Variety + (1 | Block/Variety)" in text
    assert row(text, "VarietyMarvellous") == [5.292, 7.079, 10.0, 0.748, 0.472]
    table = section(output, "anova(m): one row per term")
    # lmerTest: Variety 491.8 245.9 2 10 1.4853 0.2724; nitro F 118.0031
    assert row(table, "Variety") == pytest.approx(
        [491.8214, 245.9107, 2, 10.0, 1.4853, 0.27239], abs=1e-4
    )
    assert row(table, "nitro")[4] == pytest.approx(118.0031, abs=2e-4)
    contest = section(output, "contest(m, ...)")
    assert row(contest, "Variety")[4] == 1.4853
    assert "VarietyMarvellous - VarietyVictory" in contest


def test_cake_factorial_anova_is_lmertests(output):
    text = section(output, "lmer(angle ~ recipe * temperature")
    assert "REML criterion at convergence: 1633.2" in text
    # lmerTest: recipe 2 42 0.2488 0.7809; temperature 5 210 20.5199 < 2e-16;
    # recipe:temperature 10 210 1.0062 0.4393 (Satterthwaite and KR alike)
    for table in text.split("Type III")[1:]:
        assert row(table, "recipe")[2:5] == pytest.approx([2, 42.0, 0.2488], abs=1e-4)
        assert row(table, "recipe")[5] == pytest.approx(0.7809, abs=1e-4)
        assert row(table, "temperature")[4] == pytest.approx(20.5199, abs=1e-4)
        assert row(table, "recipe:temperature")[2:6] == pytest.approx(
            [10, 210.0, 1.0062, 0.4393], abs=1e-4
        )
