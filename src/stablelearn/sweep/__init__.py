"""Sweeps: a base experiment, axes of settings, and every combination of their values.

axes: what an axis may vary and how; spec: the validated Sweep and its cells; plan:
cells x repeats grouped into compiled programs; store: trained groups saved and
resumed; run: the local and Ray backends; statistics: per-cell statistics and
comparisons with the baseline; figures, report: the sweep folder's files.
"""
