"""Experiment files, shared by the lesson, sweeps and the doctor: a TOML table names a
dataset, a model, an optimizer, training settings, repeats and optionally variants.

parse: typed reading of tables; overrides: how variants override the base and how
specs are written back as tables; spec: the validated Experiment; runner: variants x
repeats as engine runs, and their results; figures, outputs: an experiment's figures
and run-folder files.
"""

from stablelearn.experiments.overrides import settings_only, variant_tables
from stablelearn.experiments.spec import Experiment, Variant, load_file, load_mapping

__all__ = ["Experiment", "Variant", "load_file", "load_mapping", "settings_only", "variant_tables"]
