"""The data set cache folder rules and the checksummed fetch."""
import hashlib
import os

import pytest

from kestimator.datasets import _files
from kestimator.datasets._files import Remote, dataset_folder, fetch
from kestimator.errors import DataLossError, NotFoundError


def test_folder_rules(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KESTIMATOR_DATASETS", raising=False)
    assert dataset_folder("mnist") == str(tmp_path / "home" / ".kestimator" / "datasets" / "mnist")
    monkeypatch.setenv("KESTIMATOR_DATASETS", str(tmp_path / "data"))
    assert dataset_folder("cifar10") == str(tmp_path / "data" / "cifar10")
    assert dataset_folder("cifar10", "~/mine") == str(tmp_path / "home" / "mine")   # path names the folder


def test_fetch_sha256_mirror_fallback_and_no_refetch(tmp_path, monkeypatch):
    payload = b"hello data set"
    calls = []

    def serve(url, out, timeout):
        calls.append(url)
        if "bad-mirror" in url:
            raise TimeoutError("timed out")
        out.write(payload)

    monkeypatch.setattr(_files, "http_get", serve)
    remote = Remote("f.bin", ["https://bad-mirror/f.bin", "https://good/f.bin"],
                    ("sha256", hashlib.sha256(payload).hexdigest()))
    paths = fetch("Demo", "demo", [remote], path=str(tmp_path))
    assert paths == {"f.bin": str(tmp_path / "f.bin")} and (tmp_path / "f.bin").read_bytes() == payload
    assert calls == ["https://bad-mirror/f.bin", "https://good/f.bin"]
    fetch("Demo", "demo", [remote], path=str(tmp_path))
    assert len(calls) == 2                                   # present files are not fetched again


def test_fetch_failures(tmp_path, monkeypatch):
    monkeypatch.setattr(_files, "http_get", lambda url, out, timeout: out.write(b"other bytes"))
    remote = Remote("f.bin", ["https://m/f.bin"], ("sha256", "0" * 64))
    with pytest.raises(DataLossError, match=r"https://m/f.bin: sha256 [0-9a-f]{64} differs from the published 0{64}"):
        fetch("Demo", "demo", [remote], path=str(tmp_path))
    assert os.listdir(tmp_path) == []

    def refuse(url, out, timeout):
        raise ConnectionRefusedError("refused")

    monkeypatch.setattr(_files, "http_get", refuse)
    with pytest.raises(NotFoundError, match=r"Demo files are missing from .*\n  f\.bin \(https://m/f\.bin, sha256 "):
        fetch("Demo", "demo", [remote], path=str(tmp_path))
