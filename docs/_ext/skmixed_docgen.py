"""Generated pages of the skmixed docs: the API reference and the examples.

API reference
    ``docs/generated/`` gets one page per public name -- every name in
    ``skmixed.__all__`` and in the ``__all__`` of the public submodules
    (``skmixed.datasets``, ``skmixed.plotting``, ``skmixed.metrics`` ... as
    far as they exist) -- and ``api_sections.inc``, the tables that
    ``api.rst`` includes. A name added to an ``__all__`` appears in the docs
    without editing any page.

Examples
    ``docs/auto_examples/`` gets one page per ``examples/*.py`` script (not
    those starting with ``_``). The script runs cell by cell (cells start at
    ``# %%`` lines; a script without them is one cell) and the page shows
    each cell's prose (its leading ``#`` comment lines, as reStructuredText),
    code, printed output and figures. Results are cached by a hash of the
    script and of the ``skmixed`` sources, so an unchanged example is not
    run again. A script that fails fails the build. With the environment
    variable ``SKMIXED_DOCS_SKIP_EXAMPLES`` set, no example is run or shown
    (and the build says so with a warning, so it cannot pass ``-W``).

Everything generated lives in ignored folders and is rewritten only when
its content changes, so incremental builds stay incremental.
"""

import hashlib
import importlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

DOCS = Path(__file__).resolve().parent.parent
ROOT = DOCS.parent
RUNNER = Path(__file__).with_name("_run_example.py")
# Public submodules documented in sections of their own, in this order.
SUBMODULES = ("datasets", "metrics", "model_selection", "plotting")
EXAMPLE_TIMEOUT = 300  # seconds per script


def _write_if_changed(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _title(text, char="="):
    return f"{text}\n{char * len(text)}\n"


# -- API reference ---------------------------------------------------------
def _kind(obj):
    if inspect.isclass(obj):
        if issubclass(obj, Warning | Exception):
            return "exception"
        return "class"
    if callable(obj):
        return "function"
    return "data"


def _object_page(module, name, obj):
    kind = _kind(obj)
    lines = [_title(f"{module}.{name}"), f".. currentmodule:: {module}\n"]
    if kind == "class":
        lines.append(
            f".. autoclass:: {name}\n"
            "   :members:\n"
            # fit / predict / score come from our base class; get_params and
            # the metadata-routing setters are scikit-learn's, documented there.
            "   :inherited-members: RegressorMixin, BaseEstimator, "
            "_MetadataRequester\n"
            "   :exclude-members: get_metadata_routing, set_fit_request, "
            "set_predict_request, set_score_request, set_predict_proba_request, "
            "set_predict_log_proba_request, set_decision_function_request\n"
        )
    elif kind == "exception":
        lines.append(f".. autoexception:: {name}\n")
    elif kind == "function":
        lines.append(f".. autofunction:: {name}\n")
    else:
        lines.append(f".. autodata:: {name}\n")
    return "\n".join(lines)


_SECTION_OF_KIND = {
    "class": "Estimators and classes",
    "function": "Functions",
    "exception": "Warnings and exceptions",
    "data": "Constants",
}


def _public_names(module):
    return [n for n in getattr(module, "__all__", []) if not n.startswith("_")]


def _summary_table(module, names):
    rows = "\n".join(f"   {n}" for n in names)
    return f".. currentmodule:: {module}\n\n.. autosummary::\n\n{rows}\n"


def generate_api(app):
    """Write docs/generated/*.rst and the sections api.rst includes."""
    out = DOCS / "generated"
    out.mkdir(exist_ok=True)
    import skmixed

    documented, sections, pages = set(), [], {}
    by_kind = {}
    for name in _public_names(skmixed):
        obj = getattr(skmixed, name)
        by_kind.setdefault(_kind(obj), []).append(name)
        documented.add(id(obj))
        pages[f"skmixed.{name}"] = _object_page("skmixed", name, obj)
    for kind, heading in _SECTION_OF_KIND.items():
        if by_kind.get(kind):
            sections.append(
                _title(heading, "-") + "\n" + _summary_table("skmixed", by_kind[kind])
            )
    missing_modules = []
    for short in SUBMODULES:
        full = f"skmixed.{short}"
        try:
            module = importlib.import_module(full)
        except ImportError:
            missing_modules.append(full)
            continue
        names = [
            n for n in _public_names(module) if id(getattr(module, n)) not in documented
        ]
        if not names:
            continue
        text = _title(f"``{full}``", "-") + "\n"
        text += f".. automodule:: {full}\n   :no-members:\n\n"
        text += _summary_table(full, names)
        sections.append(text)
        for name in names:
            pages[f"{full}.{name}"] = _object_page(full, name, getattr(module, name))
    toctree = "\n".join(f"   generated/{page}" for page in sorted(pages))
    sections.append(f".. toctree::\n   :hidden:\n\n{toctree}\n")
    _write_if_changed(out / "api_sections.inc", "\n\n".join(sections))
    for page, text in pages.items():
        _write_if_changed(out / f"{page}.rst", text)
    for stale in out.glob("*.rst"):
        if stale.stem not in pages:
            stale.unlink()
    if missing_modules:
        logger.info(
            "skmixed_docgen: not (yet) importable: %s", ", ".join(missing_modules)
        )


# -- examples ------------------------------------------------------------------
_CELL = re.compile(r"^# ?%%.*$", re.MULTILINE)


def split_cells(source):
    """(docstring, [(prose, code, first line of code)]) of a script.

    The module docstring is the page's title (first line) and introduction;
    each ``# %%`` line starts a cell whose leading comment lines are prose.
    """
    tree_doc, body_start = "", 0
    match = re.match(r'\s*(?:[rRuU]?)("""|\'\'\')(.*?)\1', source, re.DOTALL)
    if match:
        tree_doc = textwrap.dedent(match.group(2)).strip("\n")
        body_start = match.end()
    lines = source[body_start:].split("\n")
    offset = source[:body_start].count("\n")
    cells, current, start = [], [], offset + 1
    for i, line in enumerate(lines):
        if _CELL.match(line):
            cells.append((start, current))
            current, start = [], offset + i + 2
        else:
            current.append(line)
    cells.append((start, current))
    parsed = []
    for first, cell_lines in cells:
        prose, k = [], 0
        while k < len(cell_lines) and (
            cell_lines[k].startswith("#") or (not cell_lines[k].strip() and not prose)
        ):
            if cell_lines[k].startswith("#"):
                prose.append(
                    cell_lines[k][2:]
                    if cell_lines[k].startswith("# ")
                    else cell_lines[k][1:]
                )
            k += 1
        code_lines = cell_lines[k:]
        while code_lines and not code_lines[-1].strip():
            code_lines.pop()
        code = "\n".join(code_lines)
        if prose or code.strip():
            parsed.append(("\n".join(prose).strip(), code, first + k))
    return tree_doc, parsed


def _source_hash(script):
    digest = hashlib.sha256(script.read_bytes())
    digest.update(RUNNER.read_bytes())
    for path in sorted((ROOT / "skmixed").rglob("*")):
        if path.is_file() and path.suffix in {".py", ".csv", ".json"}:
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _run(script, cells, image_dir, result_path):
    job = {
        "script": str(script),
        "cells": [{"code": code, "lineno": lineno} for _, code, lineno in cells],
        "image_dir": str(image_dir),
        "stem": script.stem,
        "result": str(result_path),
    }
    try:
        proc = subprocess.run(
            [sys.executable, str(RUNNER)],
            input=json.dumps(job),
            text=True,
            capture_output=True,
            cwd=str(ROOT),
            timeout=EXAMPLE_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        raise ExtensionError(
            f"{script.name} ran longer than {EXAMPLE_TIMEOUT} s"
        ) from exc
    if proc.returncode != 0:
        raise ExtensionError(f"Running {script.name} failed:\n{proc.stderr}")
    result = json.loads(result_path.read_text(encoding="utf-8"))
    for cell in result["cells"]:
        if "error" in cell:
            raise ExtensionError(f"{script.name} raised an error:\n{cell['error']}")
    return result


def _indent(text, prefix="   "):
    return "\n".join(prefix + line if line.strip() else "" for line in text.split("\n"))


def _example_page(script, doc, cells, result):
    title, _, intro = doc.partition("\n")
    title = title.strip() or script.stem.replace("_", " ").capitalize()
    # A sphinx-gallery style docstring underlines its title; drop the line.
    first, _, rest = intro.partition("\n")
    if first.strip() and set(first.strip()) <= set("=-~#*^"):
        intro = rest
    rel = f"../../examples/{script.name}"
    parts = [
        f".. _example_{script.stem}:\n",
        _title(title),
        intro.strip() + "\n" if intro.strip() else "",
        f":download:`Download the script <{rel}>` "
        f"(``examples/{script.name}``; it ran in {result['seconds']:.1f} s "
        "when this page was built).\n",
    ]
    for (prose, code, _), shown in zip(cells, result["cells"], strict=False):
        if prose:
            parts.append(prose + "\n")
        if code.strip():
            parts.append(".. code-block:: python\n\n" + _indent(code) + "\n")
        output = shown["output"].strip("\n").rstrip()
        if output:
            parts.append(
                ".. code-block:: text\n   :class: example-output\n\n"
                + _indent(output)
                + "\n"
            )
        for image in shown["images"]:
            parts.append(f".. image:: images/{image}\n   :alt: {image}\n")
    return "\n".join(p for p in parts if p)


def generate_examples(app):
    """Run examples/*.py (when changed) and write docs/auto_examples/."""
    out = DOCS / "auto_examples"
    image_dir = out / "images"
    scripts = sorted(
        (p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_")),
        # The tutorial first: it is where a newcomer starts.
        key=lambda p: (not p.stem.endswith("tutorial"), p.name),
    )
    out.mkdir(exist_ok=True)
    if os.environ.get("SKMIXED_DOCS_SKIP_EXAMPLES"):
        # A quick build of the prose and the API (docs/build.sh --no-examples).
        logger.warning("skmixed_docgen: examples skipped (SKMIXED_DOCS_SKIP_EXAMPLES)")
        scripts = []
    entries = []
    for script in scripts:
        doc, cells = split_cells(script.read_text(encoding="utf-8"))
        digest = _source_hash(script)
        cache = out / f"{script.stem}.result.json"
        result = None
        if cache.exists():
            cached = json.loads(cache.read_text(encoding="utf-8"))
            images = [i for c in cached["cells"] for i in c["images"]]
            if cached.get("hash") == digest and all(
                (image_dir / i).exists() for i in images
            ):
                result = cached
        if result is None:
            logger.info("skmixed_docgen: running examples/%s", script.name)
            for old in image_dir.glob(f"{script.stem}_*.png"):
                old.unlink()
            result = _run(script, cells, image_dir, cache)
            result["hash"] = digest
            cache.write_text(json.dumps(result), encoding="utf-8")
        _write_if_changed(
            out / f"{script.stem}.rst", _example_page(script, doc, cells, result)
        )
        first_line = doc.partition("\n")[0].strip() or script.stem
        entries.append((script.stem, first_line))
    for stale in out.glob("*.rst"):
        if stale.stem != "index" and stale.stem not in {s for s, _ in entries}:
            stale.unlink()
    index = [
        _title("Examples"),
        "Runnable scripts from the ``examples/`` folder of the repository, run "
        "when these pages were built: each page shows the code, what it "
        "prints and the figures it draws.\n",
    ]
    if entries:
        index.append(
            ".. toctree::\n   :maxdepth: 1\n\n"
            + "\n".join(f"   {s}" for s, _ in entries)
            + "\n"
        )
    else:
        index.append("No examples yet.\n")
    _write_if_changed(out / "index.rst", "\n".join(index))
    if not (ROOT / "examples").exists():
        shutil.rmtree(image_dir, ignore_errors=True)


def setup(app):
    # Run before autosummary / autodoc read anything (default priority 500).
    app.connect("builder-inited", generate_api, priority=100)
    app.connect("builder-inited", generate_examples, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
