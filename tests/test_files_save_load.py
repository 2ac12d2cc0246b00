"""``exp.files``: save by type and extension, load back, stream, and the experiment's shortcuts."""

from __future__ import annotations

import io
import json
import os
import pickle

import numpy as np
import pytest
import torch

from distlog.layout import manifest_path
import distlog
from distlog.cas import blob_path


@pytest.fixture
def exp(tmp_path):
    e = distlog.get_logger(str(tmp_path / "root"))
    with e.run("r1"):
        yield e


@pytest.mark.parametrize("data, filename, media_type", [
    ({"w": torch.arange(4.0)}, "model.pt", "application/x-pytorch"),
    (torch.ones(2, 3), "t", "application/x-pytorch"),
    (np.arange(6).reshape(2, 3), "a.npy", "application/x-npy"),
    (np.arange(3.0), "a", "application/x-npy"),
    ({"lr": 0.1, "layers": [1, 2], "nan": float("nan")}, "cfg.json", "application/json"),
    ({"lr": 0.1, "layers": [1, 2]}, "cfg.yaml", "application/yaml"),
    ({"lr": 0.1, "tags": {"x", "y"}}, "state", "application/x-pickle"),
    ({"lr": 0.1}, "state.pkl", "application/x-pickle"),
    (b"\x00\x01raw", "blob.bin", "application/octet-stream"),
    ("some text ✓", "notes.txt", "text/plain"),
    ("plain", "readme", "text/plain"),
])
def test_save_and_load_by_type_and_extension(exp, data, filename, media_type):
    rec = exp.files.save(data, filename)
    assert rec.media_type == media_type and rec.path == filename and rec.version == 1
    back = exp.files.load(filename)
    if isinstance(data, torch.Tensor):
        assert torch.equal(back, data)
    elif isinstance(data, dict) and any(isinstance(v, torch.Tensor) for v in data.values()):
        assert torch.equal(back["w"], data["w"])
    elif isinstance(data, np.ndarray):
        np.testing.assert_array_equal(back, data)
    elif filename == "cfg.json":
        assert back["lr"] == 0.1 and back["layers"] == [1, 2] and np.isnan(back["nan"])
    else:
        assert back == data


def test_tables_and_arrays_saved_as_text_hold_all_their_data(exp):
    """A DataFrame saved as .csv, an array or tensor as .csv/.txt: their data, every row and
    every digit (their console rendering elides rows with '...')."""
    import pandas as pd

    df = pd.DataFrame({"step": range(1000), "loss": np.linspace(1, 0, 1000) / 3})
    exp.files.save(df, "metrics.csv")
    back = pd.read_csv(io.StringIO(exp.files.load("metrics.csv")))
    pd.testing.assert_frame_equal(back, df)
    indexed = df.set_index("step")
    exp.files.save(indexed, "indexed.csv")
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(exp.files.load("indexed.csv")), index_col="step"),
                                  indexed)
    exp.files.save(df, "table.txt")
    assert len(exp.files.load("table.txt").splitlines()) == 1001
    ids, grid = np.arange(5000), np.random.default_rng(0).normal(size=(40, 3))
    exp.files.save(ids, "ids.txt")
    exp.files.save(grid, "grid.csv")
    exp.files.save(torch.tensor(grid), "grid_t.csv")
    np.testing.assert_array_equal(np.loadtxt(io.StringIO(exp.files.load("ids.txt")), dtype=np.int64), ids)
    for name in ("grid.csv", "grid_t.csv"):
        np.testing.assert_array_equal(np.loadtxt(io.StringIO(exp.files.load(name)), delimiter=","), grid)
    with pytest.raises(TypeError, match=r"1-D or 2-D array, got shape \(2, 2, 2\).*\.npy"):
        exp.files.save(np.zeros((2, 2, 2)), "cube.txt")


def test_python_rows_and_columns_saved_as_csv_are_csv(exp):
    """Row dicts, a dict of columns, or row lists under a .csv name are written as CSV (their
    repr was stored as text/csv before); anything else under .csv is refused and not saved."""
    import pandas as pd

    rows = [{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.25, "acc": 0.9}]
    exp.files.save(rows, "rows.csv")
    back = pd.read_csv(io.StringIO(exp.files.load("rows.csv")))
    assert list(back.columns) == ["step", "loss", "acc"] and back["loss"].tolist() == [0.5, 0.25]
    assert back["acc"].isna().tolist() == [True, False]
    exp.files.save({"step": [1, 2], "loss": np.array([0.5, 0.25])}, "cols.csv")
    assert exp.files.load("cols.csv") == "step,loss\n1,0.5\n2,0.25\n"
    exp.files.save([["a", 1], ["b, c", 2]], "plain.csv")
    assert exp.files.load("plain.csv") == 'a,1\n"b, c",2\n'
    exp.files.save([0.5, 0.25], "column.csv")
    assert exp.files.load("column.csv") == "0.5\n0.25\n"
    exp.files.save({"lr": 0.1, "name": "a,b"}, "row.csv")
    assert exp.files.load("row.csv") == 'lr,name\n0.1,"a,b"\n'
    for bad in ({"a": [1, 2], "b": [1]}, 3.5, [{"a": 1}, 2], {"a": {"b": 1}}):
        with pytest.raises(TypeError, match=r"a \.csv file holds a table, got .*\.json keeps dicts"):
            exp.files.save(bad, "bad.csv")
    assert not exp.files.exists("bad.csv")


def test_npz_dict_of_arrays(exp):
    exp.files.save({"x": np.arange(3), "y": np.eye(2)}, "arrays.npz")
    back = exp.files.load("arrays.npz")
    assert set(back) == {"x", "y"} and back["y"].tolist() == [[1, 0], [0, 1]]


@pytest.mark.parametrize("data, key", [({"w": np.ones(3), "config": {"lr": 0.1}}, "'config' is a dict"),
                                       ([1, "a", None], "'arr_0' is a list")])
def test_npz_refuses_what_would_load_only_by_unpickling(exp, data, key):
    with pytest.raises(TypeError, match=f"{key}, an object array.*Save it as .pkl or .pt"):
        exp.files.save(data, "state.npz")
    assert not exp.files.exists("state.npz")


@pytest.mark.parametrize("name, media_type", [("table.csv.gz", "application/gzip"),
                                               ("x.json.bz2", "application/x-bzip2"),
                                               ("data.tar.xz", "application/x-xz")])
def test_a_compressed_file_is_recorded_as_compressed_and_loads_as_its_bytes(exp, tmp_path, name, media_type):
    local = tmp_path / name
    local.write_bytes(b"\x1f\x8b compressed bytes, not UTF-8: \xff")
    assert exp.files.log_file(name, local).media_type == media_type
    assert exp.files.load(name) == local.read_bytes()
    assert distlog.open_run(exp.run_url).files.load(name) == local.read_bytes()


def test_a_missing_blob_is_named_by_its_file_with_the_likely_causes(tmp_path):
    """A run archived without its root's blob store: the error names the file, not a CAS path."""
    import shutil

    root = str(tmp_path / "root")
    e = distlog.get_logger(root)
    with e.experiment("e"), e.run("r"):
        e.files.save({"w": [1]}, "model.json")
        digest = e.files.info("model.json").sha256
        shutil.copytree(tmp_path / "root" / "e", tmp_path / "archive" / "e")
        os.unlink(os.path.join(root, blob_path(digest)))
        with pytest.raises(FileNotFoundError, match=r"file 'model.json' version 1 .*gc"):
            e.files.load("model.json")
    run = distlog.open_run(str(tmp_path / "archive" / "e" / "r"))
    for call in (run.files.load, run.files.read_bytes, run.files.open):
        with pytest.raises(FileNotFoundError, match=fr"the bytes of file 'model.json' version 1 \(blob "
                           fr"{digest}\) are not in .*without its root's .distlog/cas/ folder"):
            call("model.json")


class Custom:  # a class that weights_only unpickling refuses
    pass


def test_torch_loads_are_weights_only_unless_opted_out(exp):
    exp.files.save_torch({"obj": Custom(), "w": torch.ones(1)}, "mixed.pt")
    with pytest.raises(pickle.UnpicklingError):
        exp.files.load_torch("mixed.pt")
    with pytest.raises(pickle.UnpicklingError):
        exp.files.load("mixed.pt")
    assert torch.equal(exp.files.load_torch("mixed.pt", weights_only=False)["w"], torch.ones(1))
    assert exp.files.load_torch("mixed.pt", weights_only=False, map_location="cpu")["w"].device.type == "cpu"


def test_torch_bytes_do_not_depend_on_the_file_name(exp):
    sd = {"w": torch.arange(10.0)}
    a = exp.files.save_torch(sd, "a.pt")
    b = exp.files.save_torch(sd, "ckpt/other-name.pth")
    assert a.sha256 == b.sha256  # dedup across names: the archive is not named after a path


def test_pickle_round_trip_and_open_streams(exp):
    exp.files.save_pkl({"k": [1, 2, 3]}, "obj.pkl")
    assert exp.files.load_pkl("obj.pkl") == {"k": [1, 2, 3]}
    with exp.files.open("obj.pkl") as f:
        assert pickle.load(f) == {"k": [1, 2, 3]}
    assert pickle.loads(exp.files.read_bytes("obj.pkl")) == {"k": [1, 2, 3]}


def test_log_file_stores_an_existing_file_and_keeps_its_name(exp, tmp_path):
    src = tmp_path / "debug_data.pkl"
    src.write_bytes(pickle.dumps([1, 2]))
    rec = exp.log_file("failed_input", str(src))
    assert rec.path == "failed_input" and rec.media_type == "application/x-pickle"
    assert exp.files.load("failed_input") == [1, 2]  # decoded by the recorded media type
    out = tmp_path / "copy.pkl"
    exp.files.download("failed_input", out)
    assert out.read_bytes() == src.read_bytes()
    with pytest.raises(FileNotFoundError, match="there is none at that path; pass an existing file"):
        exp.files.log_file("x", tmp_path / "missing")


def test_log_file_of_a_file_that_changes_while_saved_stores_nothing(exp, tmp_path, monkeypatch):
    """A checkpoint still being written while ``log_file`` runs. It was hashed, then copied:
    the blob stored under the old bytes' SHA-256 held the new bytes (and a later save of the
    old bytes was deduplicated onto it; removing it afterwards lost another rank's save of the
    same bytes). Now a private copy is hashed as it is made and is what gets stored; a file
    that changed meanwhile stores nothing."""
    import hashlib

    from distlog import cas as cas_mod

    src = tmp_path / "ckpt.bin"
    old = bytes(range(256)) * 12_000  # 3 MB: read in several pieces
    src.write_bytes(old)
    real_write = cas_mod.HashingWriter.write
    wrote = []

    def write_while_the_file_grows(self, b):
        if not wrote:
            with open(src, "ab") as f:  # the checkpoint's writer goes on
                f.write(b" + more")
        wrote.append(len(b))
        return real_write(self, b)

    monkeypatch.setattr(cas_mod.HashingWriter, "write", write_while_the_file_grows)
    with pytest.raises(cas_mod.FileChangedError, match="changed while it was being saved: nothing was stored"):
        exp.files.log_file("ckpt.bin", str(src))
    monkeypatch.setattr(cas_mod.HashingWriter, "write", real_write)
    blobs = tmp_path / "root" / blob_path(hashlib.sha256(old).hexdigest())
    assert not blobs.exists() and not list((tmp_path / "root").rglob("sha256/*/*"))
    exp.files.save(old, "other.bin")
    assert exp.files.read_bytes("other.bin") == old
    rec = exp.files.log_file("ckpt.bin", str(src))  # once the file is done, it is saved as it is
    assert exp.files.read_bytes("ckpt.bin") == old + b" + more" and rec.size == len(old) + 7


def test_experiment_shortcuts(exp):
    model = torch.nn.Linear(3, 2)
    rec = exp.log_model("best_model", model)
    assert rec.path == "best_model.pt"
    sd = exp.files.load_torch("best_model.pt")
    assert torch.equal(sd["weight"], model.state_dict()["weight"])
    img = exp.log_image("predictions", np.zeros((4, 5, 3), np.uint8))
    assert img.path == "predictions.png" and exp.files.load("predictions.png").shape == (4, 5, 3)


def test_step_comes_from_the_step_scope(exp):
    with exp.step(7):
        rec = exp.files.save(b"x", "a.bin")
    assert rec.step == 7
    assert exp.files.save(b"y", "b.bin", step=3).step == 3
    assert exp.files.save(b"z", "c.bin").step is None


def test_records_carry_identity_and_the_blob_is_content_addressed(exp, tmp_path):
    rec = exp.files("checkpoints").save(b"abc", "c.bin")
    assert (rec.namespace, rec.name, rec.path) == ("checkpoints", "c.bin", "checkpoints/c.bin")
    assert rec.rank == 0 and rec.host and rec.size == 3 and rec.attempt == 0
    assert (tmp_path / "root" / blob_path(rec.sha256)).read_bytes() == b"abc"
    line = (tmp_path / "root" / "default" / "r1" / manifest_path(0)).read_text()
    assert json.loads(line.splitlines()[-1])["path"] == "checkpoints/c.bin"


@pytest.mark.parametrize("bad", ["", "/abs", "a/../b", "a\\b", "x\x00y", "a//b"])
def test_bad_names_are_rejected(exp, bad):
    with pytest.raises(ValueError):
        exp.files.save(b"x", bad)


def test_bad_namespace_and_non_str_name(exp):
    with pytest.raises(ValueError):
        exp.files("../up")
    with pytest.raises(TypeError):
        exp.files.save(b"x", 3)


def test_missing_files_name_what_exists(exp):
    exp.files.save(b"x", "there.bin")
    with pytest.raises(FileNotFoundError, match="there.bin"):
        exp.files.load("nowhere.bin")
    with pytest.raises(FileNotFoundError, match=r"versions: 1$"):
        exp.files.load("there.bin", version=5)


def test_audio_needs_save_audio(exp):
    with pytest.raises(TypeError, match="save_audio"):
        exp.files.save(np.zeros(10), "sound.wav")


def test_large_checkpoint_streams_to_disk(exp, tmp_path):
    big = {"w": torch.randn(1 << 20)}  # 4 MiB: goes through the upload lease path
    rec = exp.files.save_torch(big, "big.pt")
    assert rec.size > 4 << 20
    buf = io.BytesIO(exp.files.read_bytes("big.pt"))
    assert torch.equal(torch.load(buf, weights_only=True)["w"], big["w"])


def test_yaml_without_pyyaml_names_the_extra(exp, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "yaml", None)  # import fails like a missing package
    with pytest.raises(ImportError, match=r"pip install 'distlog\[yaml\]'"):
        exp.files.save({"a": 1}, "cfg.yaml")


def test_loading_bytes_that_are_no_torch_file_as_torch_names_the_file(tmp_path):
    """``load_torch`` of raw bytes raised torch's IndexError, and ``load`` of a ``.pt`` that
    holds no torch file said "weights only load failed ... weights_only=False will likely
    succeed" (the unsafe option, for nothing): now a ValueError naming the file."""
    import torch

    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("r"):
        exp.files.save(b"\x00" * 10, "z.pt")
        exp.files.save(b"plain bytes", "w.bin")
        exp.files.save({"w": torch.ones(2)}, "ok.pt")
        with pytest.raises(ValueError, match=r"'z.pt' is not a torch file .*begin b'\\x00\\x00\\x00\\x00'"):
            exp.files.load("z.pt")
        with pytest.raises(ValueError, match=r"'w.bin' is not a torch file"):
            exp.files.load_torch("w.bin")
        assert torch.equal(exp.files.load("ok.pt")["w"], torch.ones(2))
    run = distlog.open_run(tmp_path / "default" / "r")
    with pytest.raises(ValueError, match=r"'z.pt' is not a torch file"):
        run.files.load("z.pt")
    assert torch.equal(run.files.load("ok.pt")["w"], torch.ones(2))


def test_an_encoded_value_under_a_name_of_another_type_loads_back_as_saved(exp):
    """``save(state_dict, "pytorch_model.bin")`` was torch.save'd but recorded with the name's
    media type (application/octet-stream), so ``load`` gave bytes; the record now says what
    the bytes are, and every reader decodes them."""
    sd = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(2)}
    arr = np.arange(5.0)
    exp.files.save(sd, "pytorch_model.bin")
    exp.files.save(arr, "feats.bin")
    exp.files.save({"a": 1}, "thing.pdf")  # no figure: pickled, and recorded so
    got = exp.files.load("pytorch_model.bin")
    assert set(got) == {"w", "b"} and torch.equal(got["w"], sd["w"])
    np.testing.assert_array_equal(exp.files.load("feats.bin"), arr)
    assert exp.files.load("thing.pdf") == {"a": 1}
    types = {r.name: r.media_type for r in exp.files.list()}
    assert types["pytorch_model.bin"] == "application/x-pytorch"
    assert types["feats.bin"] == "application/x-npy" and types["thing.pdf"] == "application/x-pickle"
    exp.files.save(b"raw", "blob.bin")  # bytes stay as the name says
    assert {r.name: r.media_type for r in exp.files.list()}["blob.bin"] == "application/octet-stream"
    run_path = exp.current_run.url
    exp.close()
    reader = distlog.open_run(run_path).files
    assert torch.equal(reader.load("pytorch_model.bin")["w"], sd["w"])


@pytest.mark.filterwarnings("ignore::UserWarning")  # matplotlib may warn about fonts/backends
def test_a_figure_saved_as_pdf_or_svg_is_rendered_not_pickled(exp):
    """``save(fig, "plot.pdf")`` pickled the figure and recorded it as application/pdf: a
    download that no viewer opens. Vector formats are rendered, as image formats were."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, magic, media_type in (("plot.pdf", b"%PDF", "application/pdf"),
                                    ("plot.svg", b"<?xml", "image/svg+xml"),
                                    ("plot.eps", b"%!PS", "application/postscript")):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        rec = exp.files.save(fig, name)
        assert rec.media_type == media_type, (name, rec.media_type)
        assert exp.files.read_bytes(name).startswith(magic), name
        assert not plt.fignum_exists(fig.number)  # closed, as save(fig, "plot.png") closes it
