"""The build is idempotent and leaves no temporary files."""

from __future__ import annotations

import pytest

from perturb_core.data.build import ARTIFACTS, build, is_built
from perturb_core.errors import NotBuiltError

pytestmark = pytest.mark.realdata


def test_second_build_is_a_no_op(real_data) -> None:
    assert is_built(real_data)
    steps = build(settings=real_data)
    assert [s.artifact for s in steps] == list(ARTIFACTS)
    assert {s.status for s in steps} == {"up to date"}
    assert not list(real_data.processed_dir.rglob("*.tmp"))


def test_missing_raw_files_say_which_command(tmp_path, real_data) -> None:
    empty = real_data.with_(data_dir=tmp_path / "nothing")
    assert not is_built(empty)
    with pytest.raises(NotBuiltError, match="run `python -m perturb_core data fetch`"):
        build(settings=empty)
