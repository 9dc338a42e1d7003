import json

import numpy as np
import pytest

from benchmark.data.format import DataError, load_trajectory, open_dataset, write_manifest, write_trajectory


def _write(tmp_path, frames=5, atoms=3, **kw):
    pos = np.arange(frames * atoms * 3, dtype=np.float32).reshape(frames, atoms, 3)
    return write_trajectory(tmp_path / "t0", pos, dt_fs=2.0, atomic_numbers=[1] * atoms,
                            masses=[1.0] * atoms, **kw), pos


def test_round_trip_is_memory_mapped(tmp_path):
    path, pos = _write(tmp_path, box=[10, 11, 12], bonds=[[0, 1]], velocities=np.ones((5, 3, 3)))
    traj = load_trajectory(path)
    assert isinstance(traj.positions, np.memmap)
    np.testing.assert_array_equal(traj.positions, pos)
    assert traj.velocities.shape == (5, 3, 3)
    assert traj.dt_fs == 2.0 and traj.box.tolist() == [10, 11, 12] and traj.bonds.tolist() == [[0, 1]]


def test_manifest_checksum_and_verify(tmp_path):
    _write(tmp_path)
    manifest = write_manifest(tmp_path, name="x", kind="k", params={})
    ds = open_dataset(tmp_path, verify=True)
    assert ds.checksum == manifest["checksum"] and len(ds) == 1
    # same content -> same checksum
    assert write_manifest(tmp_path, name="x", kind="k", params={})["checksum"] == manifest["checksum"]
    # a modified byte is caught by verify, naming the file
    f = tmp_path / "t0" / "positions.npy"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(DataError, match="positions.npy: sha256"):
        open_dataset(tmp_path, verify=True)


def test_truncated_file_names_the_file(tmp_path):
    path, _ = _write(tmp_path)
    write_manifest(tmp_path, name="x", kind="k", params={})
    f = path / "positions.npy"
    f.write_bytes(f.read_bytes()[:-7])
    with pytest.raises(DataError, match="positions.npy"):
        open_dataset(tmp_path)
    with pytest.raises(DataError, match="positions.npy"):
        load_trajectory(path)


@pytest.mark.parametrize("edit,match", [
    (lambda m: m.pop("dt_fs"), "missing keys"),
    (lambda m: m.update(n_atoms=4), "disagrees with meta.json"),
    (lambda m: m.update(atomic_numbers=[1, 1]), "atomic_numbers/masses"),
    (lambda m: m.update(bonds=[[0, 9]]), "bond indices"),
])
def test_bad_meta_is_reported(tmp_path, edit, match):
    path, _ = _write(tmp_path)
    meta = json.loads((path / "meta.json").read_text())
    edit(meta)
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=match):
        load_trajectory(path)


def test_nan_coordinates_are_found(tmp_path):
    pos = np.zeros((4, 2, 3), np.float32)
    pos[2, 1, 0] = np.nan
    path = write_trajectory(tmp_path / "t", pos, dt_fs=1, atomic_numbers=[1, 1], masses=[1, 1])
    with pytest.raises(DataError, match="non-finite value at frame 2"):
        load_trajectory(path, check_finite=True)
    with pytest.raises(DataError, match="non-finite"):
        write_manifest(tmp_path, name="x", kind="k", params={})
