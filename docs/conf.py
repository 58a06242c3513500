"""Sphinx configuration of the skmixed documentation.

Build (offline, warnings as errors): ``docs/build.sh`` or
``sphinx-build -W -b html docs docs/_build/html``.
"""

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
# Document the checkout, even where another skmixed is installed.
sys.path.insert(0, str(DOCS.parent))

import skmixed  # noqa: E402

project = "skmixed"
author = "the skmixed developers"
copyright = "2026, the skmixed developers"
release = skmixed.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "matplotlib.sphinxext.plot_directive",
    "skmixed_docgen",
]

exclude_patterns = ["_build", "generated/*.inc"]
templates_path = []
root_doc = "index"

# -- autodoc / numpydoc ------------------------------------------------------
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc's Parameters sections say it already
autosummary_generate = False  # skmixed_docgen writes the pages itself
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# No intersphinx: the build must work offline and never fetch inventories.

# -- matplotlib's plot directive (figures drawn while building) --------------
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"figure.autolayout": False}
plot_pre_code = "import numpy as np\nimport matplotlib.pyplot as plt\n"

# -- HTML ---------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skmixed {release}"
html_static_path = ["_static"]
html_css_files = ["skmixed.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": True,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "installation": []}
html_show_sourcelink = False
