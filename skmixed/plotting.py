"""Figures for fitted grouped models (needs matplotlib: the ``plot`` extra).

Three figures cover what a hierarchical-modeling tutorial draws:

- :func:`plot_group_fits` -- observed points and each group's fitted line,
  on one axis or one panel per group (the ggplot ``facet_wrap`` figure);
- :func:`plot_random_effects` -- the caterpillar plot of conditional modes
  with intervals from their conditional variances (lme4's
  ``dotplot(ranef(m, condVar = TRUE))``);
- :func:`plot_residuals` -- residuals against fitted values and normal QQ
  plots of the residuals and of the conditional modes.

Each returns the matplotlib object it drew on, so it can be restyled.
matplotlib is imported only when a figure is drawn, so ``import skmixed``
never needs it.
"""

import inspect
import math

import numpy as np
import pandas as pd
from scipy import stats

from skmixed._base import fitted_weights
from skmixed._groups import as_factor
from skmixed._inputs import response_name

__all__ = ["plot_group_fits", "plot_random_effects", "plot_residuals"]

# Above this many groups a legend would be unreadable, so none is drawn.
_MAX_LEGEND_ENTRIES = 20
# Line styles of the models compared in one plot_group_fits figure.
_LINE_STYLES = ("-", "--", ":", "-.")
# Above this many levels the caterpillar plot drops the level labels.
_MAX_LABELLED_LEVELS = 60


def _pyplot():
    """Import matplotlib.pyplot, or say how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "skmixed.plotting needs matplotlib. Install it with "
            'pip install "scikit-mixed[plot]" (or pip install matplotlib).'
        ) from exc
    return plt


# -- groups and features ---------------------------------------------------
def _model_group_names(model):
    """Grouping factor names the model uses (empty for a pooled model)."""
    names = getattr(model, "_group_names", None)
    return list(names()) if callable(names) else []


def _combine(columns):
    """One factor from several grouping columns.

    If one column already identifies every combination (``Subject`` within
    ``School``), that column alone labels the groups; otherwise the labels
    are joined with ``:`` as R's interaction ``a:b`` is.
    """
    factors = {name: as_factor(values, name) for name, values in columns.items()}
    if len(factors) == 1:
        return next(iter(factors.items()))
    names = list(factors)
    joined = factors[names[0]].astype(str).to_numpy(dtype=object)
    for name in names[1:]:
        joined = joined + ":" + factors[name].astype(str).to_numpy(dtype=object)
    n_cells = len(set(joined))
    for name in names:
        if len(factors[name].categories) == n_cells:
            return name, factors[name]
    return ":".join(names), as_factor(joined, ":".join(names))


def _group_factor(model, X, groups):
    """The grouping factor used to split rows into lines: (name, Categorical)."""
    names = _model_group_names(model)
    if isinstance(groups, pd.DataFrame):
        use = [n for n in names if n in groups.columns] or list(groups.columns)
        return _combine({str(n): groups[n] for n in use})
    if groups is not None:
        name = getattr(groups, "name", None)
        name = str(name) if name is not None else (names[0] if names else "group")
        return name, as_factor(np.asarray(groups).ravel(), name)
    if isinstance(X, pd.DataFrame):
        use = [n for n in names if n in X.columns]
        if use:
            return _combine({n: X[n] for n in use})
    raise ValueError(
        "plot_group_fits needs the groups: pass groups= (for a pooled model "
        "too, to colour the points) or keep the grouping column(s) named in "
        "the model in a pandas X."
    )


def _feature_values(model, X, feature):
    """The x-axis values and their label."""
    if isinstance(X, pd.DataFrame):
        if feature is None:
            skip = set(_model_group_names(model))
            numeric = [
                c
                for c in X.columns
                if c not in skip and pd.api.types.is_numeric_dtype(X[c].dtype)
            ]
            if not numeric:
                raise ValueError("X has no numeric feature column to plot against.")
            feature = numeric[0]
        if isinstance(feature, (int, np.integer)) and feature not in X.columns:
            return X.iloc[:, feature].to_numpy(dtype=float), str(X.columns[feature])
        return X[feature].to_numpy(dtype=float), str(feature)
    array = np.asarray(X, dtype=float)
    if array.ndim == 1:
        array = array[:, None]
    if feature is None:
        feature = 0
    if not isinstance(feature, (int, np.integer)):
        raise ValueError(
            f"feature={feature!r} names a column, but X is not a DataFrame; "
            "pass the column index instead."
        )
    return array[:, feature], f"x{feature}"


def _group_colors(n):
    """n distinguishable mid-tone colours.

    Up to ten groups get matplotlib's qualitative ``tab10``; more get hues
    evenly spaced around the colour wheel at one lightness and saturation
    (what ggplot's default discrete scale does), so that no group is drawn
    in a pale shade that is hard to see on white.
    """
    import colorsys

    import matplotlib as mpl

    if n <= 10:
        return [mpl.colormaps["tab10"](i) for i in range(n)]
    return [colorsys.hls_to_rgb(i / n, 0.45, 0.7) for i in range(n)]


# -- plot_group_fits ---------------------------------------------------------
def plot_group_fits(model, X, y, groups=None, *, feature=None, col_wrap=None, ax=None):
    """Observed points and each group's fitted line.

    For every group the points ``(feature, y)`` are drawn with the model's
    predictions at that group's rows, joined in order of the feature, in the
    group's colour. A :class:`~skmixed.PooledRegressor` draws the same line
    in every group, a :class:`~skmixed.FixedEffectsRegressor` parallel lines
    (or free slopes with ``group_slopes``), a
    :class:`~skmixed.MixedLMRegressor` lines shrunken towards the population
    line. Pass several models as a dict to compare their lines (solid,
    dashed, dotted ...) on the same points.

    Parameters
    ----------
    model : fitted estimator, or dict of str to fitted estimator
        Any skmixed regressor (anything with ``predict(X, groups)``), or
        several, keyed by the label their line style gets in the legend.
    X : array-like or pandas.DataFrame of shape (n_samples, n_features)
        Features (and grouping columns) as passed to ``fit``.
    y : array-like of shape (n_samples,)
        Observed response. Its ``name`` (for a pandas Series) labels the
        y axis.
    groups : array-like, pandas.Series or pandas.DataFrame, default=None
        Grouping factor(s) as passed to ``fit``. Needed when the grouping
        column is not in ``X``, and for a pooled model (which has no grouping
        factor of its own) to split the points into groups. With several
        grouping columns, the lines follow their finest combination.
    feature : str or int, default=None
        Column of ``X`` on the x axis: a name, or a position. Default: the
        first numeric column that is not a grouping column.
    col_wrap : int, default=None
        If given, draw one panel per group, ``col_wrap`` panels per row
        (like ggplot's ``facet_wrap``); otherwise all groups share one axis.
    ax : matplotlib.axes.Axes, default=None
        Axis to draw on (single-axis mode only). Default: a new figure.

    Returns
    -------
    matplotlib.axes.Axes or matplotlib.figure.Figure
        The Axes (single axis) or the Figure holding the panels
        (``col_wrap`` given).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.linear_model import LinearRegression
    >>> from skmixed.datasets import load_sleepstudy
    >>> from skmixed.plotting import plot_group_fits
    >>> df = load_sleepstudy()
    >>> model = LinearRegression().fit(df[["Days"]], df["Reaction"])
    >>> ax = plot_group_fits(model, df[["Days"]], df["Reaction"], df["Subject"])
    >>> len(ax.lines), ax.get_xlabel(), ax.get_ylabel()
    (18, 'Days', 'Reaction')
    """
    _refuse_dask_rows(X=X, y=y, groups=groups)
    plt = _pyplot()
    if col_wrap is not None and ax is not None:
        raise ValueError("Pass either col_wrap (one panel per group) or ax, not both.")
    if col_wrap is not None and (
        not isinstance(col_wrap, (int, np.integer)) or col_wrap < 1
    ):
        raise ValueError(f"col_wrap must be a positive integer; got {col_wrap!r}.")
    models = model if isinstance(model, dict) else {None: model}
    if not models:
        raise ValueError("model is an empty dict; pass at least one fitted model.")
    if len(models) > len(_LINE_STYLES):
        raise ValueError(f"At most {len(_LINE_STYLES)} models can share one figure.")
    # The grouping factor comes from the model that has one (the pooled
    # model of a comparison has none).
    namer = max(models.values(), key=lambda m: len(_model_group_names(m)))
    group_name, factor = _group_factor(namer, X, groups)
    x, x_label = _feature_values(namer, X, feature)
    y_obs = np.asarray(y, dtype=float).ravel()
    if not (len(x) == len(y_obs) == len(factor)):
        raise ValueError(
            f"X, y and groups must have the same number of rows; got "
            f"{len(x)}, {len(y_obs)} and {len(factor)}."
        )
    fits = [
        np.asarray(_predict(m, X, groups), dtype=float).ravel() for m in models.values()
    ]
    levels = list(factor.categories)
    codes = np.asarray(factor.codes)
    colors = _group_colors(len(levels))
    y_label = response_name(y)
    style_handles = [
        _legend_line(color="0.25", ls=style, lw=1.6, label=str(label))
        for label, style in zip(models, _LINE_STYLES, strict=False)
    ]

    if col_wrap is None:
        if ax is None:
            _, ax = plt.subplots(figsize=(7.5, 4.8), layout="constrained")
        for k, level in enumerate(levels):
            _draw_group(ax, x, y_obs, fits, codes == k, colors[k], label=level)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        if len(models) > 1:
            ax.add_artist(
                ax.legend(handles=style_handles, loc="upper left", fontsize="small")
            )
        if len(levels) <= _MAX_LEGEND_ENTRIES:
            group_handles = ax.lines[:: len(models)]
            legend = ax.legend(
                handles=group_handles,
                title=group_name,
                loc="upper left",
                bbox_to_anchor=(1.01, 1.0),
                fontsize="small",
                title_fontsize="small",
                ncols=1 if len(levels) <= 12 else 2,
                frameon=False,
            )
            # Colour swatches: the group legend is about colour, not style.
            for handle in legend.legend_handles:
                handle.set_linestyle("-")
        return ax

    ncols = min(int(col_wrap), len(levels))
    nrows = math.ceil(len(levels) / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(1.9 * ncols + 0.6 + 1.4 * (len(models) > 1), 1.7 * nrows + 0.6),
        sharex=True,
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    for k, panel in enumerate(axes.flat):
        if k >= len(levels):
            panel.set_visible(False)
            continue
        _draw_group(panel, x, y_obs, fits, codes == k, colors[k], label=levels[k])
        panel.set_title(levels[k], fontsize="small", pad=3)
        panel.tick_params(labelsize="small")
    # An invisible last-row panel leaves its column without x tick labels;
    # show them on the lowest visible panel of each column instead.
    for col in range(ncols):
        visible = [r for r in range(nrows) if r * ncols + col < len(levels)]
        axes[visible[-1], col].xaxis.set_tick_params(labelbottom=True)
    fig.supxlabel(x_label)
    fig.supylabel(y_label)
    fig.suptitle(f"{y_label} by {x_label}, one panel per {group_name}")
    if len(models) > 1:
        fig.legend(
            handles=style_handles,
            loc="outside right upper",
            fontsize="small",
            frameon=False,
        )
    return fig


def _refuse_dask_rows(**inputs):
    """plot_group_fits draws every row it is given: Dask rows are refused
    by name (they failed as "needs the groups ... in a pandas X"), with how
    to draw a sample of them."""
    from skmixed._dask import is_dask_collection
    from skmixed._dask_input import _kind

    for name, value in inputs.items():
        if value is not None and is_dask_collection(value):
            raise ValueError(
                f"plot_group_fits draws every row it is given, in memory; {name} "
                f"is {_kind(value)}. Pass pandas rows of the groups to draw, "
                "e.g. ddf[ddf['g'].isin(some_groups)].compute(): a model fitted "
                "from Dask predicts them."
            )


def _predict(model, X, groups):
    """Predictions at the rows of X; groups go only to a predict that takes them."""
    try:
        takes_groups = "groups" in inspect.signature(model.predict).parameters
    except (TypeError, ValueError):
        takes_groups = True
    if takes_groups:
        return model.predict(X, groups=groups)
    return model.predict(X)


def _draw_group(ax, x, y, fits, rows, color, label):
    """One group's points and its fitted line per model (sorted by the feature)."""
    order = np.argsort(x[rows], kind="stable")
    ax.scatter(x[rows], y[rows], s=14, color=color, alpha=0.75, linewidths=0)
    for fitted, style in zip(fits, _LINE_STYLES, strict=False):
        ax.plot(
            x[rows][order],
            fitted[rows][order],
            color=color,
            ls=style,
            lw=1.6,
            label=label,
        )


def _legend_line(**kwargs):
    """A free-standing line, for legend entries."""
    from matplotlib.lines import Line2D

    return Line2D([], [], **kwargs)


# -- plot_random_effects -----------------------------------------------------
def plot_random_effects(model, factor=None, level=0.95):
    """Caterpillar plot of the conditional modes of one grouping factor.

    One panel per random-effect term of ``factor`` (``(Intercept)``,
    ``Days`` ...). In each panel the levels are sorted by their conditional
    mode; a horizontal bar shows mode +/- z * sqrt(conditional variance),
    z the standard normal quantile for ``level`` -- lme4's
    ``dotplot(ranef(m, condVar = TRUE))``.

    Parameters
    ----------
    model : fitted MixedLMRegressor
        Anything with ``random_effects_`` (dict: factor name -> DataFrame of
        conditional modes, index = level labels, columns = term names) and,
        for the intervals, ``random_effects_cov_`` (dict: factor name ->
        array of shape (n_levels, n_terms, n_terms), same level order).
    factor : str, default=None
        Grouping factor to draw. Default: the first one in
        ``model.random_effects_`` (the only one for a single grouping factor).
    level : float or None, default=0.95
        Coverage of the intervals; None draws the modes only.

    Returns
    -------
    matplotlib.figure.Figure
        One panel (Axes) per term, in ``figure.axes``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np, pandas as pd
    >>> from types import SimpleNamespace
    >>> from skmixed.plotting import plot_random_effects
    >>> modes = pd.DataFrame({"(Intercept)": [-2.0, 0.5, 1.5]}, index=["a", "b", "c"])
    >>> fitted = SimpleNamespace(
    ...     random_effects_={"g": modes},
    ...     random_effects_cov_={"g": np.full((3, 1, 1), 0.25)},
    ... )
    >>> fig = plot_random_effects(fitted)
    >>> [ax.get_title() for ax in fig.axes]
    ['(Intercept)']
    """
    plt = _pyplot()
    effects = getattr(model, "random_effects_", None)
    if not isinstance(effects, dict) or not effects:
        raise ValueError(
            "plot_random_effects needs a fitted mixed model with random "
            "effects (the random_effects_ attribute of MixedLMRegressor)."
        )
    if factor is None:
        factor = next(iter(effects))
    if factor not in effects:
        raise ValueError(
            f"No grouping factor {factor!r} in this model; it has {list(effects)}."
        )
    if level is not None and not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1) or None; got {level!r}.")
    modes = effects[factor]
    cov = getattr(model, "random_effects_cov_", None)
    cov = None if cov is None or level is None else cov.get(factor)
    half_widths = None
    if cov is not None:
        z = stats.norm.ppf(0.5 + level / 2)
        variances = np.diagonal(np.asarray(cov, dtype=float), axis1=1, axis2=2)
        half_widths = z * np.sqrt(np.clip(variances, 0.0, None))

    n_levels, n_terms = modes.shape
    labelled = n_levels <= _MAX_LABELLED_LEVELS
    height = min(max(3.0, 0.19 * n_levels + 1.1), 14.0) if labelled else 4.5
    fig, axes = plt.subplots(
        1,
        n_terms,
        figsize=(max(3.4 * n_terms, 4.2), height),
        squeeze=False,
        layout="constrained",
    )
    labels = np.asarray([str(v) for v in modes.index], dtype=object)
    for j, (term, panel) in enumerate(zip(modes.columns, axes.flat, strict=True)):
        values = modes.iloc[:, j].to_numpy(dtype=float)
        order = np.argsort(values, kind="stable")
        positions = np.arange(n_levels)
        panel.axvline(0.0, color="0.6", lw=0.9, ls="--", zorder=0)
        if half_widths is not None:
            panel.errorbar(
                values[order],
                positions,
                xerr=half_widths[order, j],
                fmt="none",
                ecolor="0.45",
                elinewidth=1.2,
            )
        panel.plot(values[order], positions, "o", color="C0", ms=4.5)
        panel.set_title(str(term))
        panel.set_ylim(-0.7, n_levels - 0.3)
        if labelled:
            panel.set_yticks(positions, labels[order], fontsize="small")
        else:
            panel.set_yticks([])
        panel.grid(axis="y", color="0.92", lw=0.6)
        panel.set_axisbelow(True)
    axes[0, 0].set_ylabel(factor)
    interval = "" if half_widths is None else f" +/- {level:.0%} interval"
    fig.supxlabel(f"Conditional mode{interval}", fontsize="medium")
    fig.suptitle(f"Random effects of {factor}")
    return fig


# -- plot_residuals ------------------------------------------------------------
def _plotting_positions(n):
    """R's ppoints(n): (i - a) / (n + 1 - 2a), a = 3/8 for n <= 10, else 1/2."""
    a = 3.0 / 8.0 if n <= 10 else 0.5
    return (np.arange(1, n + 1) - a) / (n + 1 - 2 * a)


def _qq(ax, sample, title, ylabel):
    """Normal QQ plot with R's qqline (through the first and third quartiles)."""
    sample = np.sort(np.asarray(sample, dtype=float))
    theoretical = stats.norm.ppf(_plotting_positions(len(sample)))
    ax.scatter(theoretical, sample, s=12, color="C0", alpha=0.8, linewidths=0)
    q_sample = np.quantile(sample, [0.25, 0.75])
    q_norm = stats.norm.ppf([0.25, 0.75])
    if q_sample[1] > q_sample[0]:
        slope = (q_sample[1] - q_sample[0]) / (q_norm[1] - q_norm[0])
        intercept = q_sample[0] - slope * q_norm[0]
        ax.axline((0.0, intercept), slope=slope, color="C3", lw=1.1)
    ax.set_title(title, fontsize="medium")
    ax.set_xlabel("Theoretical normal quantiles")
    ax.set_ylabel(ylabel)


def plot_residuals(model):
    """Residual diagnostics: residuals vs fitted and normal QQ plots.

    Panels: residuals against fitted values (with a line at zero); a normal
    QQ plot of the residuals; and, for a mixed model, a normal QQ plot of
    the conditional modes of each random-effect term. Uses
    ``model.fittedvalues_`` and ``model.residuals_`` (and
    ``model.random_effects_`` when present); for a GLMM the Pearson
    residuals (``model.residuals("pearson")``) against the fitted means; for
    a fit with ``sample_weight`` the weighted residuals ``sqrt(w) r``, whose
    variance is constant (as R's ``plot.lm`` and lme4's Pearson residuals).

    Parameters
    ----------
    model : fitted estimator
        A fitted skmixed regressor.

    Returns
    -------
    matplotlib.figure.Figure
        The panels are in ``figure.axes``, in the order above.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from skmixed.plotting import plot_residuals
    >>> rng = np.random.default_rng(0)
    >>> fitted = SimpleNamespace(
    ...     fittedvalues_=rng.normal(size=50), residuals_=rng.normal(size=50)
    ... )
    >>> [ax.get_title() for ax in plot_residuals(fitted).axes]
    ['Residuals vs fitted', 'Normal QQ: residuals']
    """
    plt = _pyplot()
    fitted = getattr(model, "fittedvalues_", None)
    residuals = getattr(model, "residuals_", None)
    kind = "Residuals"
    if residuals is None and hasattr(model, "family_"):
        # A GLMM: Pearson residuals against the fitted means, as lme4's
        # plot(glmer) draws them.
        residuals, kind = model.residuals("pearson"), "Pearson residuals"
    if fitted is None or residuals is None:
        raise ValueError(
            "plot_residuals needs a fitted model with fittedvalues_ and "
            "residuals_ attributes; fit the model first."
        )
    fitted = np.asarray(fitted, dtype=float).ravel()
    residuals = np.asarray(residuals, dtype=float).ravel()
    weights = fitted_weights(model)
    if weights is not None:
        # r_i has variance σ²/w_i: sqrt(w) r is what should look homoscedastic
        residuals, kind = np.sqrt(weights) * residuals, "Weighted residuals"
    effects = getattr(model, "random_effects_", None)
    effect_panels = []
    if isinstance(effects, dict):
        for factor, modes in effects.items():
            for term in modes.columns:
                effect_panels.append((factor, term, modes[term].to_numpy(float)))

    n_panels = 2 + len(effect_panels)
    ncols = 2 if n_panels in (2, 4) else 3
    nrows = math.ceil(n_panels / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.7 * ncols, 3.3 * nrows), layout="constrained"
    )
    axes = np.atleast_1d(axes).ravel()
    for extra in axes[n_panels:]:
        fig.delaxes(extra)

    ax = axes[0]
    ax.axhline(0.0, color="0.5", lw=0.9, ls="--")
    ax.scatter(fitted, residuals, s=12, color="C0", alpha=0.7, linewidths=0)
    ax.set_title(f"{kind} vs fitted", fontsize="medium")
    ax.set_xlabel("Fitted values")
    ax.set_ylabel(kind)
    _qq(axes[1], residuals, f"Normal QQ: {kind.lower()}", kind)
    for panel, (factor, term, values) in zip(axes[2:], effect_panels, strict=False):
        _qq(panel, values, f"Normal QQ: {term} | {factor}", "Conditional modes")
    return fig
