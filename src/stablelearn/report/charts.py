"""Interactive charts (Vega-Lite specs built with Altair) for the HTML reports.

Every chart takes the width of its column, has labelled axes, shows values on hover,
uses a colour-blind-safe palette, and switches to a log axis when its values span more
than two decades. Long histories are thinned to at most MAX_POINTS epochs per curve (the
first and last kept), and values are rounded to 4 significant digits, which keeps the
reproduce report's data near 1 MB.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_POINTS = 150
HEIGHT = 260
# Okabe-Ito: distinguishable with every common colour-vision deficiency
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
# marker shapes and dash patterns that tell series apart where their colours or lines overlap
SHAPES = ["circle", "square", "triangle-up", "diamond", "triangle-down", "cross", "triangle-right", "wedge"]  # fmt: skip
DASHES = [[1, 0], [6, 3], [2, 2], [8, 3, 2, 3]]


@dataclass(frozen=True)
class Band:
    """One curve: a configuration's median over seeds per epoch and its p10-p90 band."""

    name: str
    split: str  # "train" or "validation"
    epochs: np.ndarray
    median: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def over_models(
        cls, name: str, split: str, values: np.ndarray, epochs: np.ndarray
    ) -> "Band | None":
        """Median and p10-p90 over the models [models, epochs] at each epoch where some
        model is finite (the PNG figures' percentiles); None where fewer than two epochs
        are (no line to draw)."""
        from stablelearn.figures import epoch_percentiles

        values = np.asarray(values, float)
        measured = np.isfinite(values).any(axis=0)
        if measured.sum() < 2:  # a single point draws no line
            return None
        low, median, high = epoch_percentiles(values, measured)
        return cls(name, split, np.asarray(epochs), median, low, high)


def _alt():
    import altair as alt

    return alt


def _round(value: Any) -> float | None:
    v = float(value)
    return float(f"{v:.4g}") if np.isfinite(v) else None


def thin(n: int, limit: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most `limit` of n points, evenly spread, first and last kept."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(int))


def wants_log(values: Sequence[float] | np.ndarray, ratio: float = 100) -> bool:
    """Whether positive values span more than `ratio` (two decades by default)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    return v.size > 1 and v.min() > 0 and v.max() / v.min() > ratio


def _scale(log: bool):
    alt = _alt()
    return alt.Scale(type="log") if log else alt.Scale(zero=False)


def _colours(names: Sequence[str]):
    alt = _alt()
    domain = list(dict.fromkeys(names))
    return alt.Scale(domain=domain, range=[PALETTE[i % len(PALETTE)] for i in range(len(domain))])


def _label_angle(labels: Sequence[Any]) -> int:
    """Category labels upright when they are short, slanted when they are long."""
    return 0 if max((len(str(label)) for label in labels), default=0) <= 12 else -30


def _conditional(value_channel, predicate, if_true: Any, if_false: Any):
    """alt.condition between two constants as an object of the channel's value class
    (e.g. alt.OpacityValue). Given the plain dict (or a shorthand string), encode()
    converts it with from_dict, which indexes Altair's whole schema at every call: that
    was half of the report charts' build time. The spec is the same."""
    alt = _alt()
    return value_channel(**alt.condition(predicate, alt.value(if_true), alt.value(if_false)))


DATA = "values"  # the charts name their data; the rows are added after Altair's to_dict


def _data():
    """The chart's data by name: Altair then neither copies nor validates the rows, which
    took most of a chart's build time."""
    return _alt().Data(name=DATA)


# the configuration every chart shares, set on the finished spec: Altair's configure_*
# and properties() each deep-copy the whole chart, which was a third of a chart's build
CONFIG = {
    "axis": {"labelFontSize": 12, "titleFontSize": 13},
    "legend": {"labelFontSize": 12, "titleFontSize": 12, "orient": "bottom", "columns": 3,
               "labelLimit": 260},
    "title": {"fontSize": 14, "anchor": "start"},
    "view": {"strokeWidth": 0},
}  # fmt: skip


def _finish(chart, title: str, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    spec = chart.to_dict(validate=False)
    config = spec.setdefault("config", {})
    for key, settings in CONFIG.items():
        config[key] = {**config.get(key, {}), **settings}
    spec["title"] = title
    spec["autosize"] = {"type": "fit-x", "contains": "padding"}
    spec["datasets"] = {DATA: list(rows)}
    return spec


def curves(
    bands: Sequence[Band],
    title: str,
    y_title: str,
    x_title: str = "epoch",
    log: bool | None = None,
) -> dict:
    """Median curves with their p10-p90 bands; hover shows every curve's value at an epoch,
    clicking a legend entry highlights that configuration. `log` forces the y axis's scale
    (None: log when the values span more than two decades; a log axis leaves out values
    that are not positive)."""
    alt = _alt()
    rows = []
    for k, b in enumerate(bands):
        for i in thin(len(b.epochs)):
            rows.append({"configuration": b.name, "split": b.split, "key": f"s{k}",
                         "epoch": int(b.epochs[i]), "median": _round(b.median[i]),
                         "p10": _round(b.low[i]), "p90": _round(b.high[i])})  # fmt: skip
    values = [r[k] for r in rows for k in ("median", "p10", "p90")]
    log = wants_log([v for v in values if v is not None]) if log is None else log
    rows = [r for r in rows if r["median"] is not None and (not log or r["median"] > 0)]
    data = _data()
    pick = alt.selection_point(fields=["configuration"], bind="legend")
    hover = alt.selection_point(fields=["epoch"], nearest=True, on="pointerover", empty=False)
    colour = alt.Color("configuration:N", scale=_colours([b.name for b in bands]), title=None)
    base = alt.Chart(data).encode(
        x=alt.X("epoch:Q", title=x_title, axis=alt.Axis(format="d", tickMinStep=1)),
        color=colour,
        opacity=_conditional(alt.OpacityValue, pick, 1.0, 0.15),
    )
    y = alt.Y("median:Q", title=y_title, scale=_scale(log))
    band = base.mark_area().encode(
        y=alt.Y("p10:Q", scale=_scale(log), title=y_title),
        y2=alt.Y2("p90:Q"),
        opacity=_conditional(alt.OpacityValue, pick, 0.15, 0.03),
        detail=alt.Detail("split:N"),
    )
    splits = sorted({b.split for b in bands})
    line = base.mark_line(strokeWidth=2).encode(
        y=y,
        strokeDash=alt.StrokeDash("split:N", title=None, sort=splits)
        if len(splits) > 1
        else alt.StrokeDashValue([1, 0]),
        detail=alt.Detail("split:N"),
    )
    points = base.mark_point(size=50, filled=True).encode(
        y=y, opacity=_conditional(alt.OpacityValue, hover, 1, 0)
    )
    present = {r["key"] for r in rows}
    tips = [alt.Tooltip("epoch:Q", title=x_title)] + [
        alt.Tooltip(f"s{k}:Q", format=".4g",
                    title=f"{b.name} ({b.split})" if len(splits) > 1 else b.name)
        for k, b in enumerate(bands) if f"s{k}" in present
    ]  # fmt: skip
    rule = (
        alt.Chart(data)
        .transform_pivot("key", value="median", groupby=["epoch"])
        .mark_rule(color="#888", strokeWidth=6)
        .encode(
            x=alt.X("epoch:Q"), opacity=_conditional(alt.OpacityValue, hover, 0.35, 0), tooltip=tips
        )
        .add_params(hover)
    )
    chart = (
        alt.layer(band, line, points, rule)
        .add_params(pick)
        .properties(width="container", height=HEIGHT)
    )
    return _finish(chart, title, rows)


def seed_curves(
    name: str,
    epochs: np.ndarray,
    values: np.ndarray,
    seeds: Sequence[int],
    diverged_epoch: Sequence[int],
    y_title: str,
) -> dict:
    """Every seed's curve ([seeds, epochs] `values`); diverged seeds are drawn in
    vermillion up to their last finite value; hover names the seed."""
    alt = _alt()
    keep = thin(len(epochs))
    rows = []
    for s, seed in enumerate(seeds):
        status = "diverged" if diverged_epoch[s] > 0 else "finished"
        for i in keep:
            v = _round(values[s, i])
            if v is not None:
                rows.append({"seed": int(seed), "status": status, "epoch": int(epochs[i]),
                             "value": v, "diverged_epoch": int(diverged_epoch[s]) if diverged_epoch[s] > 0 else None})  # fmt: skip
    log = wants_log([r["value"] for r in rows])
    hover = alt.selection_point(fields=["seed"], on="pointerover", nearest=True)
    colour = alt.Color("status:N", title=None,
                       scale=alt.Scale(domain=["finished", "diverged"], range=[PALETTE[0], PALETTE[3]]))  # fmt: skip
    base = alt.Chart(_data()).encode(
        x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(format="d", tickMinStep=1)),
        y=alt.Y("value:Q", title=y_title, scale=_scale(log)),
        color=colour,
        detail=alt.Detail("seed:N"),
    )
    lines = base.mark_line(strokeWidth=1.2).encode(
        opacity=_conditional(alt.OpacityValue, hover, 0.95, 0.25)
    )
    points = (
        base.mark_point(size=25, filled=True, opacity=0)
        .encode(
            tooltip=[  # numbers only: nearest-point tooltips lose text fields
                alt.Tooltip("seed:Q"),
                alt.Tooltip("diverged_epoch:Q", title="diverged at epoch"),
                alt.Tooltip("epoch:Q"),
                alt.Tooltip("value:Q", format=".4g", title=y_title),
            ]
        )
        .add_params(hover)
    )
    chart = alt.layer(lines, points).properties(width="container", height=HEIGHT)
    return _finish(chart, f"{name}: every seed", rows)


def scores_strip(
    names: Sequence[str],
    scores: Sequence[np.ndarray],
    seeds: Sequence[Sequence[int]],
    score_title: str,
    title: str,
    highlight: str | None = None,
) -> dict:
    """One row per configuration, one dot per seed, a tick at the median; diverged seeds
    (non-finite scores) are counted in the row's label. Hover names the seed."""
    alt = _alt()
    rows, labels = [], []
    for name, values, group_seeds in zip(names, scores, seeds, strict=True):
        values = np.asarray(values, float)
        bad = int((~np.isfinite(values)).sum())
        label = name + (f" ({bad}/{values.size} diverged)" if bad else "")
        labels.append(label)
        for seed, v in zip(group_seeds, values, strict=True):
            r = _round(v)
            if r is not None:
                rows.append({"configuration": label, "seed": int(seed), "score": r,
                             "recommended": name == highlight})  # fmt: skip
    # scores of seeds: a best group squashed against the axis is what a log axis undoes
    log = wants_log([r["score"] for r in rows], ratio=20)
    # every configuration gets its row, also one whose every seed diverged (no dot to draw)
    y = alt.Y("configuration:N", sort=labels, title=None, axis=alt.Axis(labelLimit=200),
              scale=alt.Scale(domain=labels))  # fmt: skip
    x = alt.X("score:Q", title=score_title, scale=_scale(log))
    dots = alt.Chart(_data()).mark_circle(size=55, opacity=0.75).encode(
        x=x, y=y, yOffset=alt.YOffset("jitter:Q", scale=alt.Scale(domain=[-1, 1])),
        color=_conditional(alt.ColorValue, "datum.recommended", PALETTE[1], PALETTE[0]),
        tooltip=[alt.Tooltip("configuration:N"), alt.Tooltip("seed:N"),
                 alt.Tooltip("score:Q", format=".4g", title=score_title)],
    ).transform_calculate(jitter="sin(datum.seed * 12.9898) * 0.6")  # fmt: skip
    median = alt.Chart(_data()).mark_tick(
        thickness=3, size=26, color="#1f2328"
    ).encode(x=alt.X("median(score):Q", scale=_scale(log)), y=y,
             tooltip=[alt.Tooltip("configuration:N"),
                      alt.Tooltip("median(score):Q", format=".4g", title="median")])  # fmt: skip
    chart = alt.layer(dots, median).properties(width="container", height=max(60, 34 * len(names)))
    return _finish(chart, title, rows)


# below this fraction of the viridis scale the colour is dark enough for white text (where
# white and black have equal contrast: WCAG relative luminance 0.179)
VIRIDIS_DARK_BELOW = 0.434


def heat_map(
    rows: Sequence[dict[str, Any]],
    x: tuple[str, str],
    y: tuple[str, str],
    value: tuple[str, str],
    title: str,
    text: str | None = None,
    higher_is_better: bool = True,
    domain: tuple[float, float] | None = None,
    missing: str = "n/a",
) -> dict:
    """A heat map of `rows` (dicts of x, y, value and text fields): x, y and value are
    (field, axis title). Viridis colours, the better end bright; each printed value is
    white or black by the darkness of its cell's colour; hover shows the row. `domain`
    fixes the colour range (e.g. (0, 1) for a rate); a row without a value is a grey cell
    labelled `missing`."""
    alt = _alt()
    xf, xt = x
    yf, yt = y
    vf, vt = value
    numbers = [r[vf] for r in rows if r.get(vf) is not None]
    columns = list(dict.fromkeys(r[xf] for r in rows))  # in the rows' order, as the rows'
    log = domain is None and wants_log(numbers)
    scheme = alt.Scale(scheme="viridis", reverse=not higher_is_better, type="log" if log else "linear",
                       **({"domain": list(domain)} if domain else {}))  # fmt: skip
    base = alt.Chart(_data()).encode(
        x=alt.X(f"{xf}:O", title=xt, sort=columns, axis=alt.Axis(labelAngle=_label_angle(columns))),
        y=alt.Y(f"{yf}:O", title=yt, sort=list(dict.fromkeys(r[yf] for r in rows))),
    )
    tips = [alt.Tooltip(f"{xf}:O", title=xt), alt.Tooltip(f"{yf}:O", title=yt),
            alt.Tooltip(f"{vf}:Q", title=vt, format=".4g")]  # fmt: skip
    if text:
        tips.append(alt.Tooltip(f"{text}:N", title="detail"))
    valid = f"isValid(datum['{vf}']) && isFinite(datum['{vf}'])"
    cells = base.mark_rect().encode(
        color=alt.Color(f"{vf}:Q", title=vt, scale=scheme), tooltip=tips
    )
    layers = [cells]
    if len(numbers) < len(rows):
        layers.append(
            base.mark_rect(color="#e6e6e6").encode(tooltip=tips).transform_filter(f"!({valid})")
        )
        layers.append(
            base.mark_text(fontSize=12, color="black")
            .encode(text=alt.TextValue(missing), tooltip=tips)
            .transform_filter(f"!({valid})")
        )
    if numbers:
        lo, hi = domain if domain else (min(numbers), max(numbers))
        if log:
            where = f"(log(datum['{vf}']) - {np.log(lo)!r}) / {max(np.log(hi / lo), 1e-12)!r}"
        else:
            where = f"(datum['{vf}'] - {lo!r}) / {max(hi - lo, 1e-12)!r}"
        dark = (
            f"{where} < {VIRIDIS_DARK_BELOW}"
            if higher_is_better
            else f"{where} > {1 - VIRIDIS_DARK_BELOW}"
        )
        labels = (
            base.mark_text(fontSize=12)
            .encode(
                text=alt.Text(f"{vf}:Q", format=".3g"),
                color=_conditional(alt.ColorValue, dark, "white", "black"),
                tooltip=tips,
            )
            .transform_filter(valid)
        )
        layers.append(labels)
    chart = alt.layer(*layers).properties(
        width="container", height=max(120, 36 * len({r[yf] for r in rows}))
    )
    return _finish(chart, title, rows)


def axis_lines(
    rows: Sequence[dict[str, Any]],
    x_title: str,
    y_title: str,
    title: str,
    log_x: bool = False,
    series_title: str | None = None,
    value_title: str = "median",
    distinguish: bool = False,
    y_domain: tuple[float, float] | None = None,
) -> dict:
    """A metric against one axis of a sweep: rows hold x, series, median, low, high (the
    median's confidence interval), n and diverged; one line with its interval per series,
    hover shows the cell, a legend click highlights a series.

    `value_title` names the plotted value in the tooltip (e.g. "success rate");
    `distinguish` gives every series its own marker shape and dash pattern as well as its
    colour, so lines lying on top of each other stay apart; `y_domain` fixes the y range
    (e.g. (0, 1) for a rate)."""
    alt = _alt()
    clean = [r for r in rows if r.get("median") is not None]
    numeric_x = all(isinstance(r["x"], int | float) for r in rows)
    xtype = "Q" if numeric_x else "O"
    log_y = wants_log([r["median"] for r in clean])
    pick = alt.selection_point(fields=["series"], bind="legend")
    names = list(dict.fromkeys(r["series"] for r in rows))
    # the categories in the rows' order, those whose every value is missing included
    categories = [] if numeric_x else list(dict.fromkeys(r["x"] for r in rows))
    x_scale = alt.Undefined
    if numeric_x:
        x_scale = alt.Scale(type="log") if log_x else alt.Scale(zero=False)
    base = alt.Chart(_data()).encode(
        x=alt.X(f"x:{xtype}", title=x_title, sort=None if numeric_x else categories,
                scale=x_scale,
                axis=alt.Undefined if numeric_x else alt.Axis(labelAngle=_label_angle(categories))),
        color=alt.Color("series:N", title=series_title, scale=_colours(names)),
        opacity=_conditional(alt.OpacityValue, pick, 1.0, 0.15),
    )  # fmt: skip
    y_scale = alt.Scale(domain=list(y_domain)) if y_domain else _scale(log_y)
    y = alt.Y("median:Q", title=y_title, scale=y_scale)
    interval = base.mark_errorband(opacity=0.15) if numeric_x else base.mark_rule(strokeWidth=2)
    interval = interval.encode(
        y=alt.Y("low:Q", title=y_title, scale=y_scale),
        y2=alt.Y2("high:Q"),
        opacity=_conditional(alt.OpacityValue, pick, 0.2, 0.04),
    )
    tips = [alt.Tooltip("series:N", title=series_title or "series"), alt.Tooltip(f"x:{xtype}", title=x_title),
            alt.Tooltip("median:Q", format=".4g", title=value_title), alt.Tooltip("low:Q", format=".4g", title="CI low"),
            alt.Tooltip("high:Q", format=".4g", title="CI high"), alt.Tooltip("n:Q"),
            alt.Tooltip("diverged:Q")]  # fmt: skip
    if not distinguish:
        line = base.mark_line(point=alt.OverlayMarkDef(size=70, filled=True)).encode(
            y=y, tooltip=tips
        )
        chart = alt.layer(interval, line)
    else:
        legend = {"title": series_title, "legend": alt.Legend(symbolOpacity=1)}
        dash = alt.StrokeDash("series:N", sort=names, **legend,
                              scale=alt.Scale(domain=names, range=[DASHES[i % len(DASHES)] for i in range(len(names))]))  # fmt: skip
        shape = alt.Shape("series:N", sort=names, **legend,
                          scale=alt.Scale(domain=names, range=[SHAPES[i % len(SHAPES)] for i in range(len(names))]))  # fmt: skip
        line = base.mark_line(strokeWidth=2).encode(y=y, strokeDash=dash)
        points = base.mark_point(size=70, filled=True, opacity=0.9).encode(
            y=y, shape=shape, tooltip=tips,
            opacity=_conditional(alt.OpacityValue, pick, 0.9, 0.15),
        )  # fmt: skip
        chart = alt.layer(points, interval, line)  # the legend takes the first layer's opacity
    chart = chart.add_params(pick).properties(width="container", height=HEIGHT)
    return _finish(chart, title, clean)
