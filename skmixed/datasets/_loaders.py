"""Loaders for the CSV files in ``skmixed/datasets/data``."""

import json
from functools import cache
from importlib import resources

import pandas as pd


@cache
def _column_types():
    """Column types and factor levels of every shipped data set, by file name."""
    text = resources.files("skmixed.datasets").joinpath("data/datasets.json")
    meta = json.loads(text.read_text(encoding="utf-8"))
    return {ds["file"]: ds["columns"] for ds in meta["datasets"]}


def _read(file_name):
    """Read a shipped CSV: numeric columns as float, factors as categoricals."""
    columns = _column_types()[file_name]
    path = resources.files("skmixed.datasets").joinpath("data", file_name)
    with resources.as_file(path) as csv_path:
        frame = pd.read_csv(
            csv_path,
            dtype={c["name"]: str for c in columns if c["type"] == "factor"},
        )
    for column in columns:
        name = column["name"]
        if column["type"] == "factor":
            frame[name] = pd.Categorical(frame[name], categories=column["levels"])
        else:
            frame[name] = frame[name].astype("float64")
    return frame


def load_sleepstudy(school=False):
    """Reaction times in a sleep deprivation study (lme4's ``sleepstudy``).

    Average reaction time per day (``Reaction``, ms) for 18 subjects
    (``Subject``) restricted to three hours of sleep per night; ``Days`` counts
    the days of deprivation (0-9; days 0 and 1 were adaptation and training in
    the original study). 180 rows, 10 per subject. Source: Belenky et al.
    (2003), *Journal of Sleep Research* 12, 1-12, as distributed with the R
    package lme4.

    Parameters
    ----------
    school : bool, default=False
        If True, add the column ``School`` used in the classic three-level
        tutorial: ``"1"`` for the first 60 rows (subjects 308-332), ``"2"`` for
        the next 60 and ``"3"`` for the last 60. The schools are invented for
        teaching; they carry no information about reaction times.

    Returns
    -------
    pandas.DataFrame
        Columns ``Reaction``, ``Days`` (float) and ``Subject`` (categorical),
        plus ``School`` (categorical) when ``school=True``.

    Examples
    --------
    >>> from skmixed.datasets import load_sleepstudy
    >>> df = load_sleepstudy()
    >>> df.shape
    (180, 3)
    >>> list(df.columns)
    ['Reaction', 'Days', 'Subject']
    >>> load_sleepstudy(school=True)["School"].value_counts().tolist()
    [60, 60, 60]
    """
    return _read("sleepstudy_school.csv" if school else "sleepstudy.csv")


def load_penicillin():
    """Diameters of growth inhibition zones for six penicillin samples.

    Each of six samples of penicillin (``sample``, A-F) was applied to each
    of 24 agar plates (``plate``, a-x); ``diameter`` (mm) is the zone of
    inhibited growth. A fully crossed design: 144 rows. Source: Davies and
    Goldsmith (1972), *Statistical Methods in Research and Production*, as
    distributed with lme4 (``Penicillin``).

    Returns
    -------
    pandas.DataFrame
        Columns ``diameter`` (float), ``plate`` and ``sample`` (categorical).

    Examples
    --------
    >>> from skmixed.datasets import load_penicillin
    >>> load_penicillin().shape
    (144, 3)
    """
    return _read("Penicillin.csv")


def load_pastes():
    """Strength of a chemical paste product, casks nested in batches.

    Ten delivery batches (``batch``, A-J); three casks (``cask``, a-c) chosen
    from each batch and two assays of ``strength`` per cask. ``sample`` is the
    cask within batch (``"A:a"`` ...). 60 rows. Source: Davies and Goldsmith
    (1972), as distributed with lme4 (``Pastes``).

    Returns
    -------
    pandas.DataFrame
        Columns ``strength`` (float), ``batch``, ``cask`` and ``sample``
        (categorical).

    Examples
    --------
    >>> from skmixed.datasets import load_pastes
    >>> load_pastes()["sample"].nunique()
    30
    """
    return _read("Pastes.csv")


def load_dyestuff():
    """Yield of dyestuff by batch of an intermediate product.

    Five preparations from each of six batches (``Batch``, A-F) of an
    intermediate product; ``Yield`` is grams of standard-colour dyestuff. 30
    rows. The between-batch variance is clearly positive. Source: Davies and
    Goldsmith (1972), as distributed with lme4 (``Dyestuff``).

    Returns
    -------
    pandas.DataFrame
        Columns ``Batch`` (categorical) and ``Yield`` (float).

    Examples
    --------
    >>> from skmixed.datasets import load_dyestuff
    >>> load_dyestuff().groupby("Batch", observed=True).size().tolist()
    [5, 5, 5, 5, 5, 5]
    """
    return _read("Dyestuff.csv")


def load_dyestuff2():
    """Simulated data shaped like Dyestuff, with no between-batch variance.

    Same layout as :func:`load_dyestuff` (six batches of five); the
    between-batch variance is estimated as zero, which makes it the standard
    example of a singular (boundary) fit. Source: Box and Tiao (1973),
    *Bayesian Inference in Statistical Analysis*, as distributed with lme4
    (``Dyestuff2``).

    Returns
    -------
    pandas.DataFrame
        Columns ``Batch`` (categorical) and ``Yield`` (float).

    Examples
    --------
    >>> from skmixed.datasets import load_dyestuff2
    >>> load_dyestuff2().shape
    (30, 2)
    """
    return _read("Dyestuff2.csv")


def load_cbpp():
    """Contagious bovine pleuropneumonia in 15 herds (lme4's ``cbpp``).

    Serological incidence of CBPP in zebu cattle of 15 herds (``herd``) in
    Ethiopia, followed over four periods (``period``, 1-4): ``incidence`` new
    cases out of ``size`` animals. 56 rows (some herds miss a period). The
    standard binomial GLMM example: lme4's
    ``glmer(cbind(incidence, size - incidence) ~ period + (1 | herd),
    family = binomial)`` is :class:`~skmixed.MixedGLMRegressor` fitted to the
    proportion ``incidence / size`` with ``sample_weight = size``. Source:
    Lesnoff et al. (2004), *Preventive Veterinary Medicine* 64, 27-40, as
    distributed with lme4.

    Returns
    -------
    pandas.DataFrame
        Columns ``herd`` (categorical), ``incidence``, ``size`` (float) and
        ``period`` (categorical).

    Examples
    --------
    >>> from skmixed.datasets import load_cbpp
    >>> df = load_cbpp()
    >>> df.shape
    (56, 4)
    >>> int(df["incidence"].sum()), int(df["size"].sum())
    (99, 842)
    """
    return _read("cbpp.csv")


def load_grouseticks():
    """Ticks on red grouse chicks (lme4's ``grouseticks``).

    Number of ticks (``TICKS``) counted on the heads of 403 red grouse chicks
    (``INDEX``) from 118 broods (``BROOD``) at 63 locations (``LOCATION``),
    sampled in three years (``YEAR``: 95, 96, 97) at altitude ``HEIGHT``
    (m); ``cHEIGHT`` is ``HEIGHT`` centred at its mean. A standard Poisson
    GLMM example with crossed or nested grouping factors. Source: Elston et
    al. (2001), *Parasitology* 122, 563-569, as distributed with lme4.

    Returns
    -------
    pandas.DataFrame
        Columns ``INDEX``, ``BROOD``, ``YEAR``, ``LOCATION`` (categorical) and
        ``TICKS``, ``HEIGHT``, ``cHEIGHT`` (float).

    Examples
    --------
    >>> from skmixed.datasets import load_grouseticks
    >>> df = load_grouseticks()
    >>> df.shape
    (403, 7)
    >>> df["BROOD"].nunique(), df["LOCATION"].nunique()
    (118, 63)
    """
    return _read("grouseticks.csv")


def load_oats():
    """Yield of oats: a split-plot experiment with nitrogen and three varieties.

    Six blocks (``Block``, I-VI), each split into three plots sown with one
    variety (``Variety``: Golden Rain, Marvellous, Victory), each plot split
    into four subplots given 0, 0.2, 0.4 or 0.6 cwt/acre of nitrogen
    (``nitro``); ``yield`` in bushels/acre. 72 rows. The classic mixed model
    is ``yield ~ nitro + Variety + (1 | Block/Variety)``. Source: Yates
    (1935), as distributed with nlme (``Oats``). nlme's ``Block`` is an
    ordered factor (VI < V < ... < I); here its levels are sorted, I to VI.

    Returns
    -------
    pandas.DataFrame
        Columns ``Block``, ``Variety`` (categorical), ``nitro`` and
        ``yield`` (float).

    Examples
    --------
    >>> from skmixed.datasets import load_oats
    >>> df = load_oats()
    >>> df.shape
    (72, 4)
    >>> list(df["Variety"].cat.categories)
    ['Golden Rain', 'Marvellous', 'Victory']
    """
    return _read("Oats.csv")


def load_cake():
    """Breakage angle of chocolate cakes by recipe and baking temperature.

    Three recipes (``recipe``, A-C); for each, 15 replicate batches
    (``replicate``) split into six cakes baked at 175-225 °C
    (``temperature`` as a factor, ``temp`` as a number); ``angle`` is the
    breakage angle in degrees. 270 rows. A replicate is nested in its
    recipe, so the batch is the factor ``recipe:replicate``. Source: Cook
    (1938), as distributed with lme4 (``cake``). lme4's ``temperature`` is
    an ordered factor (polynomial contrasts in a formula); here it is
    unordered, so that a formula codes it with treatment contrasts
    (``temperature185``, ...).

    Returns
    -------
    pandas.DataFrame
        Columns ``replicate``, ``recipe``, ``temperature`` (categorical),
        ``angle`` and ``temp`` (float).

    Examples
    --------
    >>> from skmixed.datasets import load_cake
    >>> df = load_cake()
    >>> df.shape
    (270, 5)
    >>> list(df["temperature"].cat.categories)
    ['175', '185', '195', '205', '215', '225']
    """
    return _read("cake.csv")
