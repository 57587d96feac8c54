"""The lesson reproduced: its case studies (catalog/), the claims it makes and how each
is checked, and the run folder and report of `stablelearn reproduce`."""
