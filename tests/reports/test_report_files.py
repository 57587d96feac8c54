"""Each kind of report's files: world-readable at umask 022, and the reproduce report
within its size budget (issue 14). No browser needed."""

import stat

import pytest
from browser_reports import KINDS, report_folder  # noqa: F401

MAX_REPRODUCE_BYTES = 8_000_000


@pytest.mark.parametrize("kind", KINDS)
def test_report_files_are_0644_and_folders_0755(report_folder, kind):  # noqa: F811
    folder = report_folder(kind)  # written at umask 022
    wrong = []
    for path in [folder, *sorted(folder.rglob("*"))]:
        mode, want = stat.S_IMODE(path.lstat().st_mode), 0o755 if path.is_dir() else 0o644
        if mode != want:
            wrong.append(f"{path.relative_to(folder.parent)}: {mode:o}, not {want:o}")
    assert not wrong, f"{kind} at umask 022:\n" + "\n".join(wrong)


@pytest.mark.slow
def test_the_reproduce_report_is_under_8_mb(report_folder):  # noqa: F811
    size = (report_folder("reproduce") / "report.html").stat().st_size
    assert size < MAX_REPRODUCE_BYTES, f"report.html is {size / 1e6:.1f} MB"
