"""The fast R data reader: fixtures written in code, and equality with `rdata` on real files."""

from __future__ import annotations

import bz2
from pathlib import Path

import numpy as np
import pytest

from perturb_core.data.rda import RList, read_rda
from perturb_core.errors import DataError
from perturb_core.testing.rxdr import serialize_rda, signature_rda


def _write(tmp_path: Path, data: bytes, name: str = "x.rda") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("compression", ["bz2", "gzip", "none"])
def test_reads_named_lists_of_strings(tmp_path: Path, compression: str) -> None:
    genes = ["TP53", "ABCDEFGHI", None, "ENSG00000141510", "β-gene", ""]  # 9-char name mimics a header
    data = serialize_rda({"obj": {"drug A": {"up": genes[:2], "up_full": genes}}}, compression=compression)
    out = read_rda(_write(tmp_path, data))
    top = out["obj"]
    assert isinstance(top, RList)
    assert top.names == ["drug A"]
    entry = top[0].to_dict()
    assert list(entry["up_full"]) == genes
    assert list(entry["up"]) == genes[:2]


def test_many_length_nine_strings_take_the_fast_path(tmp_path: Path) -> None:
    genes = [f"GENE{i:05d}" for i in range(3000)]  # all 9 characters long
    out = read_rda(_write(tmp_path, signature_rda({"d": genes})))
    assert list(out["sig"][0].to_dict()["up_full"]) == genes


def test_numeric_vectors(tmp_path: Path) -> None:
    out = read_rda(_write(tmp_path, serialize_rda({"i": np.arange(4), "f": np.array([0.5, np.nan])})))
    np.testing.assert_array_equal(out["i"], [0, 1, 2, 3])
    np.testing.assert_allclose(out["f"], [0.5, np.nan])


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"not an R file at all", "not an R data file"),
        (bz2.compress(b"RDX3\nX\n\x00\x00\x00\x03"), "unexpected end of data"),
        (b"BZh91AY&SY" + b"\x00" * 40, "corrupt or truncated"),
    ],
)
def test_bad_files_raise_one_clear_error(tmp_path: Path, data: bytes, match: str) -> None:
    with pytest.raises(DataError, match=match):
        read_rda(_write(tmp_path, data))


def test_truncated_compressed_file(tmp_path: Path) -> None:
    data = signature_rda({"d": ["A", "B"]})
    with pytest.raises(DataError, match="corrupt or truncated|unexpected end"):
        read_rda(_write(tmp_path, data[: len(data) // 2]))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        read_rda(tmp_path / "nope.rda")


@pytest.mark.realdata
def test_equals_rdata_on_a_real_file(real_data) -> None:
    rdata = pytest.importorskip("rdata")
    path = real_data.raw_dir / "sciplex_signatures" / "sciplex.a549.rda"
    ref = rdata.conversion.convert(rdata.parser.parse_file(path))["sciplex.a549"]
    ours = read_rda(path)["sciplex.a549"]
    assert [str(k) for k in ref] == ours.names
    for name, entry in zip(ours.names, ours, strict=True):
        e = entry.to_dict()
        assert list(ref[name]["up_full"]) == list(e["up_full"])
        assert list(ref[name]["up"]) == list(e["up"])


# --------------------------------------------------------------------------- hostile files
# Each must end in one DataError that names the file; never a traceback, a hang or gigabytes of memory.

_HEAD = b"RDX3\nX\n" + (3).to_bytes(4, "big") + (0x040402).to_bytes(4, "big") + (0x030500).to_bytes(4, "big")
_HEAD += (5).to_bytes(4, "big") + b"UTF-8"


def _i(v: int) -> bytes:
    return int(v).to_bytes(4, "big", signed=True)


def _top(body: bytes) -> bytes:
    """An uncompressed .rda whose first object (tag 'x') is ``body``."""
    sym = _i(0x01) + _i(0x00040009) + _i(1) + b"x"
    return _HEAD + _i(0x00000402) + sym + body + _i(254)


def _altrep(cls: str, state: bytes) -> bytes:
    info = (
        _i(0x02) + _i(0x01) + _i(0x00040009) + _i(len(cls)) + cls.encode() + _i(254)
    )  # pairlist (class sym)
    return _i(238) + info + state + _i(254)


_HOSTILE = {
    "gzip bomb (100 MB of zeros)": lambda: __import__("gzip").compress(b"\0" * 100_000_000, 9),
    "vector longer than the file": lambda: _top(_i(13) + _i(2**30)),
    "negative length": lambda: _top(_i(14) + _i(-5)),
    "50,000-deep nesting": lambda: _top((_i(19) + _i(1)) * 50_000 + _i(254)),
    "compact sequence of 2^40 items": lambda: _altrep_top(2.0**40),
    "compact sequence with null state": lambda: _top(_altrep("compact_intseq", _i(254))),
    "names and elements disagree": None,  # checked by to_dict below
}


def _altrep_top(n: float) -> bytes:
    state = _i(14) + _i(3) + np.array([n, 1.0, 1.0], dtype=">f8").tobytes()
    return _top(_altrep("compact_realseq", state))


@pytest.mark.parametrize("case", [k for k, v in _HOSTILE.items() if v is not None])
def test_hostile_files_end_in_one_data_error(tmp_path: Path, case: str) -> None:
    path = _write(tmp_path, _HOSTILE[case]())
    with pytest.raises(DataError, match=str(path.name)):
        read_rda(path)


def test_names_that_do_not_match_the_elements() -> None:
    lst = RList(["a", "b"], {"names": np.array(["only one"], dtype=object)})
    with pytest.raises(DataError, match="2 elements but 1 names"):
        lst.to_dict()


def test_pipes_devices_and_links_to_them_are_refused(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "pipe.rda"
    os.mkfifo(fifo)
    link = tmp_path / "zero.rda"
    link.symlink_to("/dev/zero")
    for p in (fifo, link, tmp_path):
        with pytest.raises(DataError, match="not a regular file"):
            read_rda(p)
