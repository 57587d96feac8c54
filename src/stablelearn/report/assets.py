"""What a report page inlines: its style sheet, its script, and the Vega libraries.

The Vega, Vega-Lite and vega-embed JavaScript (about 0.9 MB) comes from vl-convert, which
bundles the versions Altair targets; bundling takes about 2 s, so the bundle is kept in
the per-user cache folder, one file per vl-convert version, and read from there after.
"""

import contextlib
import functools
from importlib import resources

from stablelearn.compile_cache import stablelearn_cache_root
from stablelearn.errors import ConfigError
from stablelearn.io import write_text_atomic


@functools.cache
def page_style() -> str:
    return resources.files("stablelearn.report").joinpath("page.css").read_text("utf-8")


@functools.cache
def page_script() -> str:
    return resources.files("stablelearn.report").joinpath("page.js").read_text("utf-8")


@functools.cache
def vega_bundle() -> str:
    """vega-embed with Vega-Lite and Vega, which set window.vegaEmbed when run."""
    import vl_convert

    path = stablelearn_cache_root() / "vega" / f"vega-embed-vl-convert-{vl_convert.__version__}.js"
    with contextlib.suppress(OSError):
        return path.read_text("utf-8")
    bundle = vl_convert.javascript_bundle()
    with contextlib.suppress(ConfigError, OSError):  # a cache that cannot be written is skipped
        write_text_atomic(path, bundle)
    return bundle
