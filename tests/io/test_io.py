import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from gptkit import GptkitError
from gptkit.io import atomic_path
from gptkit.tensor_io import iter_tensors, load_tensors, save_tensors


def sample_tensors():
    torch.manual_seed(0)
    return {"w": torch.randn(5, 7), "b16": torch.randn(3, 4).bfloat16(), "h": torch.randn(6).half(),
            "ids": torch.arange(10), "flag": torch.tensor([True, False]), "scalar": torch.tensor(2.5),
            "empty": torch.zeros(0, 4)}


def test_streaming_reader_equals_safetensors(tmp_path):
    save_file(sample_tensors(), tmp_path / "t.safetensors", metadata={"format": "pt"})
    ours, ref = load_tensors(tmp_path / "t.safetensors"), load_file(tmp_path / "t.safetensors")
    assert ours.keys() == ref.keys()
    for k in ref:
        assert ours[k].dtype == ref[k].dtype and torch.equal(ours[k], ref[k]), k


def test_streaming_reader_casts_floats_only(tmp_path):
    save_tensors(tmp_path / "t.safetensors", sample_tensors())
    cast = dict(iter_tensors(tmp_path / "t.safetensors", dtype=torch.bfloat16))
    assert cast["w"].dtype == cast["h"].dtype == torch.bfloat16
    assert cast["ids"].dtype == torch.int64 and cast["flag"].dtype == torch.bool


@pytest.mark.parametrize("keep", [4, 30, -1])
def test_truncated_file_is_reported(tmp_path, keep):
    save_tensors(tmp_path / "t.safetensors", sample_tensors())
    data = (tmp_path / "t.safetensors").read_bytes()
    (tmp_path / "t.safetensors").write_bytes(data[:keep])
    with pytest.raises(GptkitError, match="truncated or corrupt"):
        load_tensors(tmp_path / "t.safetensors")


def test_atomic_path_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half-written")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]  # no temporary left behind


def test_a_figure_that_fails_to_save_leaves_the_old_image(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gptkit.io import save_figure

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    png = save_figure(fig, tmp_path / "loss.png")
    before = png.read_bytes()
    assert before.startswith(b"\x89PNG")
    class Broken(matplotlib.artist.Artist):
        def draw(self, renderer):
            raise RuntimeError("cannot draw")

    ax.add_artist(Broken())  # savefig now fails partway
    with pytest.raises(RuntimeError, match="cannot draw"):
        save_figure(fig, png)
    assert png.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["loss.png"]
    plt.close(fig)
