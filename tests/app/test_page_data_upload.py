"""AppTest of the Data page's upload (real data read-only; uploads go to a scratch data folder)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from perturb_core.testing.uploads import h5ad_bytes, zip_bytes

pytestmark = pytest.mark.realdata


@pytest.fixture
def scratch_data(real_data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder that sees the built real data (symlinks) but keeps its own ``user/`` imports."""
    root = tmp_path / "data"
    root.mkdir()
    (root / "processed").symlink_to(real_data.processed_dir)
    (root / "raw").symlink_to(real_data.raw_dir)
    monkeypatch.setenv("PERTURB_CORE_DATA_DIR", str(root))
    monkeypatch.setenv("PERTURB_CORE_UPLOAD_MAX_MB", "1")
    return root


def _upload(open_page, data: bytes, filename: str, name: str) -> AppTest:
    at = open_page("data")
    at.file_uploader(key="upload_file").set_value((filename, data, "application/octet-stream"))
    at.run()
    at.text_input(key="upload_name").set_value(name)
    at.button(key="upload_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _errors(at: AppTest) -> str:
    return "\n".join(e.value for e in at.error)


def test_upload_limit_is_stated_up_front(scratch_data, open_page) -> None:
    at = open_page("data")
    assert "at most 1 MB" in at.expander[0].label
    assert at.file_uploader(key="upload_file").label.endswith("at most 1 MB)")


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("broken.h5ad", b"\x89HDF junk" * 50, "broken.h5ad: not a readable .h5ad"),
        ("big.h5ad", b"\0" * (2 * 2**20), "big.h5ad is 2.0 MB; the upload limit is 1 MB"),
        ("evil.zip", zip_bytes({"../evil.rda": b"x"}), "member '../evil.rda' points outside"),
    ],
)
def test_bad_uploads_get_one_message_and_store_nothing(
    scratch_data, open_page, filename: str, data: bytes, message: str
) -> None:
    at = _upload(open_page, data, filename, "mine")
    assert message in _errors(at) and len(at.error) == 1
    assert str(scratch_data) not in _errors(at)
    assert not (scratch_data / "user").exists() or not list((scratch_data / "user").glob("*.h5ad"))
    assert "mine" not in at.selectbox(key="sig_dataset").options


def test_good_h5ad_is_registered_listed_and_usable(scratch_data, open_page, texts) -> None:
    at = _upload(open_page, h5ad_bytes(), "my screen.h5ad", "my-screen")
    assert not at.error, _errors(at)
    assert "Imported my-screen" in "\n".join(s.value for s in at.success).replace("**", "")
    assert "my-screen" in at.selectbox(key="sig_dataset").options  # listed at once
    at.button(key=next(b.key for b in at.button if b.label == "Use my-screen now")).click().run()
    assert at.selectbox(key="sig_dataset").value == "my-screen"
    assert at.tabs[0].label == "Signatures: my-screen"
    assert [m.value for m in at.metric][:4] == ["2", "3", "6", "5"]  # lines, drugs, signatures, genes
    assert not at.exception and not at.error
    at.switch_page("pages/retrieval.py").run()  # usable on another page at once
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="sig_dataset").value == "my-screen"
