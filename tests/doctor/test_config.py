"""The doctor's experiment id comes from the data file's name, whatever that name is."""

from pathlib import Path

import pytest

from stablelearn.doctor.config import doctor_id
from stablelearn.experiments.spec import _ID


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("lesson_regression.csv", "doctor-lesson_regression"),
        ("my data.csv", "doctor-my-data"),
        ("données été.tsv.gz", "doctor-donnees-ete"),
        ("sales (2024) v1.2.csv", "doctor-sales-2024-v1.2"),
        ("数据.csv", "doctor"),
        ("--.csv", "doctor"),
    ],
)
def test_doctor_id_is_a_folder_name_derived_from_the_file_name(name, expected):
    experiment_id = doctor_id(Path("some folder") / name)
    assert experiment_id == expected
    assert _ID.fullmatch(experiment_id)
