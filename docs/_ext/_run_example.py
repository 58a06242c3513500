"""Run one example script cell by cell and record what each cell shows.

Used by ``skmixed_docgen`` in a subprocess (so a script cannot disturb the
Sphinx process). Reads a JSON job from stdin::

    {"script": path, "cells": [{"code": str, "lineno": int}, ...],
     "image_dir": path, "stem": str, "result": path}

and writes to ``result`` a JSON list, per cell, of ``{"output": text,
"images": [file names]}`` plus the run time. Cells run in one namespace with
``__name__ == "__main__"``, as ``python script.py`` would run them.
Figures are captured whether the script saves them or only draws them:
``savefig`` writes into ``image_dir`` (never next to the script), and any
figure still open after a cell is saved there too.
"""

import contextlib
import io
import json
import sys
import time
import traceback
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

job = json.load(sys.stdin)
image_dir = Path(job["image_dir"])
image_dir.mkdir(parents=True, exist_ok=True)
stem = job["stem"]
emitted = {}  # id(figure) -> file name, so a figure is shown once per cell
cell_images = []
n_unnamed = 0
original_savefig = Figure.savefig


def _image_name(requested):
    return f"{stem}_{Path(str(requested)).stem}.png"


def _savefig(self, fname, *args, **kwargs):
    """Save into the docs' image folder instead of where the script asked."""
    if not isinstance(fname, (str, Path)):
        return original_savefig(self, fname, *args, **kwargs)
    name = _image_name(fname)
    kwargs.pop("format", None)
    kwargs.setdefault("dpi", 100)
    original_savefig(self, image_dir / name, *args, format="png", **kwargs)
    if id(self) not in emitted:
        cell_images.append(name)
    emitted[id(self)] = name
    return None


def _formatwarning(message, category, filename, lineno, line=None):
    # What the reader needs is the warning, not this machine's file paths.
    return f"{category.__name__}: {message}\n"


Figure.savefig = _savefig
plt.show = lambda *args, **kwargs: None
warnings.formatwarning = _formatwarning

namespace = {"__name__": "__main__", "__file__": job["script"]}
sys.path.insert(0, str(Path(job["script"]).parent))
results = []
start = time.perf_counter()
for cell in job["cells"]:
    cell_images = []
    buffer = io.StringIO()
    # Pad with blank lines so tracebacks point at the script's own line numbers.
    code = compile("\n" * (cell["lineno"] - 1) + cell["code"], job["script"], "exec")
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        try:
            exec(code, namespace)
        except BaseException:
            failure = traceback.format_exc()
        else:
            failure = None
    for number in plt.get_fignums():
        figure = plt.figure(number)
        if id(figure) not in emitted:
            n_unnamed += 1
            figure.savefig(f"figure{n_unnamed}")
    results.append({"output": buffer.getvalue(), "images": list(cell_images)})
    if failure is not None:
        results[-1]["error"] = failure
        break
    plt.close("all")
    emitted.clear()

Path(job["result"]).write_text(
    json.dumps({"cells": results, "seconds": time.perf_counter() - start}),
    encoding="utf-8",
)
