"""R's output and the data it was fitted on, as the R scripts under
tests/data/<topic>/ save them (make_<...>.R writes <stem>.json and
<stem>.csv)."""

import json
from pathlib import Path

import pandas as pd

DATA = Path(__file__).parent / "data"


def r_output(topic, stem):
    """R's JSON output of tests/data/<topic>/<stem>.json."""
    return json.loads((DATA / topic / f"{stem}.json").read_text())


def r_data(topic, stem):
    """The data frame R fitted, tests/data/<topic>/<stem>.csv."""
    return pd.read_csv(DATA / topic / f"{stem}.csv")
