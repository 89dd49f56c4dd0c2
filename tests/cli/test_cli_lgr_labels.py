"""``lgr predict`` text names what made the prediction; the old selector name ``chem_knn`` resolves with a note."""

from __future__ import annotations

import pytest

from perturb_core.cli import main
from perturb_core.config import Settings

pytestmark = pytest.mark.realdata


def test_predict_with_the_old_chem_knn_selector_name_notes_the_new_one(
    real_data: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["lgr", "predict", "--cell-line", "C32", "--drug", "Trametinib", "--selector", "chem_knn", "--k", "3"]
    )
    out = capsys.readouterr()
    assert code == 0 and "is now 'chem_knn_retrieval'" in out.err
    assert "prediction (chem_knn_retrieval)" in out.out
