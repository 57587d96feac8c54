"""`stablelearn doctor`: diagnose a user's own data and model, and prove which fix works.

config: the user's configuration from a data file, an experiment file and flags;
repairs: the registry of repairs the detectors point at; diagnose: train, detect,
try the repairs and rank them; report: the doctor's folder.
"""
