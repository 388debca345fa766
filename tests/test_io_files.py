"""Model files: safetensors + JSON round-trip; pickles and truncated files are refused."""

import pickle

import pytest
import torch

from napari_rvae.io.files import CONFIG_NAME, WEIGHTS_NAME, load_model_files, save_model_files


def test_round_trip(tmp_path):
    tensors = {"w": torch.randn(3, 4), "b": torch.arange(5.0)}
    save_model_files(tmp_path / "m", tensors, {"kind": "vae", "latent": 2})
    loaded, config = load_model_files(tmp_path / "m", kind="vae")
    assert config["latent"] == 2 and "package_version" in config
    for k in tensors:
        assert torch.equal(loaded[k], tensors[k])


def test_pickle_is_refused_without_executing(tmp_path):
    save_model_files(tmp_path / "m", {"w": torch.zeros(2)}, {"kind": "vae"})

    class Boom:
        def __reduce__(self):
            return (exec, ("import pathlib; pathlib.Path(%r).write_text('pwned')" % str(tmp_path / "pwned"),))

    (tmp_path / "m" / WEIGHTS_NAME).write_bytes(pickle.dumps(Boom()))
    with pytest.raises(ValueError, match="pickle"):
        load_model_files(tmp_path / "m")
    assert not (tmp_path / "pwned").exists()


def test_truncated_and_wrong_kind(tmp_path):
    save_model_files(tmp_path / "m", {"w": torch.randn(100)}, {"kind": "segmenter"})
    with pytest.raises(ValueError, match="segmenter"):
        load_model_files(tmp_path / "m", kind="vae")
    data = (tmp_path / "m" / WEIGHTS_NAME).read_bytes()
    (tmp_path / "m" / WEIGHTS_NAME).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="safetensors"):
        load_model_files(tmp_path / "m")
    (tmp_path / "m" / CONFIG_NAME).write_text("{broken")
    with pytest.raises(ValueError, match="JSON"):
        load_model_files(tmp_path / "m")


def test_atomic_write_gives_usual_permissions(tmp_path):
    import os

    from napari_rvae.io.files import atomic_write_text

    path = atomic_write_text(tmp_path / "a.txt", "hello")
    mask = os.umask(0)
    os.umask(mask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~mask)
    assert not list(tmp_path.glob(".a.txt.*"))
