"""The shipped data sets: shapes, dtypes and R's factor levels."""

import json
from pathlib import Path

import pandas as pd
import pytest

from skmixed import datasets

META = json.loads(
    (Path(datasets.__file__).parent / "data" / "datasets.json").read_text()
)
LOADERS = {
    "sleepstudy": datasets.load_sleepstudy,
    "sleepstudy_school": lambda: datasets.load_sleepstudy(school=True),
    "Penicillin": datasets.load_penicillin,
    "Pastes": datasets.load_pastes,
    "Dyestuff": datasets.load_dyestuff,
    "Dyestuff2": datasets.load_dyestuff2,
    "cbpp": datasets.load_cbpp,
    "grouseticks": datasets.load_grouseticks,
    "Oats": datasets.load_oats,
    "cake": datasets.load_cake,
}


@pytest.mark.parametrize("meta", META["datasets"], ids=lambda m: m["name"])
def test_loader_matches_r_metadata(meta):
    frame = LOADERS[meta["name"]]()
    assert frame.shape == (meta["nrow"], meta["ncol"])
    assert list(frame.columns) == [c["name"] for c in meta["columns"]]
    for column in meta["columns"]:
        values = frame[column["name"]]
        if column["type"] == "factor":
            assert isinstance(values.dtype, pd.CategoricalDtype)
            assert list(values.cat.categories) == column["levels"]
            assert not values.isna().any()
        else:
            assert values.dtype == "float64"


def test_sleepstudy_school_blocks():
    frame = datasets.load_sleepstudy(school=True)
    assert (frame.School.iloc[:60] == "1").all()
    assert (frame.School.iloc[60:120] == "2").all()
    assert (frame.School.iloc[120:] == "3").all()
    assert frame.Reaction.iloc[0] == 249.56
    assert frame.Subject.iloc[-1] == "372"
