"""The README's commands and code stay true."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_first_lines_give_the_two_commands():
    block = re.search(r"```bash\n(.*?)```", README, re.S).group(1).splitlines()
    assert block[0].startswith('pip install -e ".[plot]" && python examples/')
    assert block[1].startswith('pip install -e ".[test]" && python -m pytest')
    script = block[0].split("&& python ")[1].split()[0]
    assert (ROOT / script).is_file()


def test_ci_runs_the_readme_test_command():
    command = re.search(r"```bash\n(.*?)```", README, re.S).group(1).splitlines()[1]
    command = command.split("#")[0].strip()
    assert command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_python_example_runs(capsys):
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "Multiple R-squared:  0.2865" in printed
    assert "REML criterion at convergence: 1743.6" in printed
    assert namespace["m"].random_effects_["Subject"].shape == (18, 2)
    assert namespace["m"].r2_nakagawa()["conditional"] > 0.79
