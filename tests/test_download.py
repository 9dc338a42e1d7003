"""Downloads against a loopback HTTP server (127.0.0.1, started in this process): no internet.

The server serves tiny fixture files made here (an MD17-style ``.npz``, an
rMD17-style ``.tar.bz2``, an alanine-dipeptide ``.pdb`` + ``.xtc``) and can
answer 404, serve corrupted bytes, or cut the connection mid-file.  The pinned
checksums live in a temporary pin file (``MDHORIZON_CHECKSUMS``), never the
repository's.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from benchmark.data import download
from benchmark.data.download import ChecksumError, OfflineError, RemoteFile, fetch
from benchmark.data.format import open_dataset
from benchmark.data.registry import make_dataset
from benchmark.specs import TaskError, WindowSpec
from benchmark.splits import build_window_split

pytestmark = pytest.mark.filterwarnings("ignore:.*frames, the published.*:UserWarning")


# ---- loopback server ------------------------------------------------------------------------
class Server:
    """``routes[path]`` = list of behaviours, one consumed per request (the last one repeats):
    ("ok", bytes) | ("404",) | ("drop", bytes, n_bytes_sent_before_closing) | ("stall", bytes, n, seconds)."""

    def __init__(self):
        self.routes: dict[str, list] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                plan = server.routes.get(self.path)
                if not plan:
                    self.send_error(404)
                    return
                action = plan.pop(0) if len(plan) > 1 else plan[0]
                if action[0] == "404":
                    self.send_error(404)
                    return
                data = action[1]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if action[0] == "ok":
                    self.wfile.write(data)
                else:  # "drop": promise the whole file, send part of it, hang up ("stall": wait first)
                    self.wfile.write(data[:action[2]])
                    self.wfile.flush()
                    if action[0] == "stall":
                        time.sleep(action[3])
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, prefix: str = "") -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{prefix}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def pins(tmp_path, monkeypatch):
    """A temporary pin file; returns a function that pins a file's sha256 or md5."""
    path = tmp_path / "checksums.json"
    path.write_text(json.dumps({"files": {}}))
    monkeypatch.setenv(download.PINS_ENV, str(path))

    def pin(name, data: bytes | None = None, alg="sha256", value=None):
        files = json.loads(path.read_text())
        value = value or hashlib.new(alg, data).hexdigest()
        files["files"][name] = {alg: value, "source": "test pin"}
        path.write_text(json.dumps(files))
    pin.path = path
    return pin


def dead_url(name="") -> str:
    """A loopback URL on which nothing listens (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"


# ---- fixture files --------------------------------------------------------------------------
def ethanol_npz(n_frames=60, seed=0) -> bytes:
    """An MD17-style file for ethanol (C, C, O heavy; 6 H): keys R (A), z, E, F."""
    rng = np.random.default_rng(seed)
    base = np.array([[0, 0, 0], [1.52, 0, 0], [2.0, 1.35, 0],  # C C O
                     [-0.4, 1.0, 0], [-0.4, -0.5, 0.9], [-0.4, -0.5, -0.9],
                     [1.9, -0.5, 0.9], [1.9, -0.5, -0.9], [2.9, 1.4, 0]], dtype=np.float64)
    R = base + 0.03 * rng.normal(size=(n_frames, 9, 3))
    buf = io.BytesIO()
    np.savez(buf, R=R, z=np.array([6, 6, 8, 1, 1, 1, 1, 1, 1], dtype=np.uint8),
             E=rng.normal(size=(n_frames, 1)), F=rng.normal(size=(n_frames, 9, 3)), theory="test")
    return buf.getvalue()


def rmd17_archive(mol="aspirin", n=50) -> bytes:
    rng = np.random.default_rng(1)
    z = np.array([6, 6, 8, 1, 1], dtype=np.int64)
    npz = io.BytesIO()
    np.savez(npz, nuclear_charges=z, coords=rng.normal(size=(n, 5, 3)), energies=rng.normal(size=n),
             forces=rng.normal(size=(n, 5, 3)), old_indices=rng.permutation(10 * n)[:n],
             old_energies=rng.normal(size=n), old_forces=rng.normal(size=(n, 5, 3)))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:bz2") as tar:
        data = npz.getvalue()
        info = tarfile.TarInfo(f"rmd17/npz_data/rmd17_{mol}.npz")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def md17_params(mirrors, tmp_path, **kw):
    return {"molecule": "ethanol", "mirrors": mirrors, "cache_dir": str(tmp_path / "cache"), **kw}


# ---- the MD17 path: good file, corrupted, dropped, 404, offline -------------------------------
def test_good_file_verified_and_converted(server, pins, tmp_path):
    data = ethanol_npz()
    server.routes["/a/md17_ethanol.npz"] = [("ok", data)]
    pins("md17_ethanol.npz", data)
    ds = make_dataset(tmp_path / "md17_ethanol", "md17_ethanol", "md17",
                      md17_params([server.url("a/")], tmp_path), seed=0, progress=False)
    ds = open_dataset(ds.path, verify=True)
    traj = ds.trajectory(0)
    R = np.load(io.BytesIO(data))["R"]
    assert traj.n_atoms == 3 and traj.n_frames == 60 and traj.dt_fs == 0.5
    np.testing.assert_allclose(traj.positions, R[:, :3], atol=1e-5)  # heavy atoms, Angstrom, every frame
    assert traj.velocities is None  # the task layer takes the forward difference
    assert traj.atomic_numbers.tolist() == [6, 6, 8]
    assert sorted(map(tuple, traj.bonds.tolist())) == [(0, 1), (1, 2)]  # C-C and C-O below 1.6 A
    src = ds.info["sources"][0]
    assert src["sha256"] == hashlib.sha256(data).hexdigest() and src["url"].startswith(server.url("a/"))
    assert ds.info["time_series"] is True and ds.info["molecule"] == "ethanol"
    cache = tmp_path / "cache"
    assert sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) == ["md17_ethanol.npz"]
    assert not [p for p in cache.iterdir() if p.name.startswith(".download")]


def test_corrupted_bytes_checksum_error_and_nothing_kept(server, pins, tmp_path):
    data = ethanol_npz()
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 0xFF
    server.routes["/a/md17_ethanol.npz"] = [("ok", bytes(bad))]
    pins("md17_ethanol.npz", data)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "other.npz").write_bytes(b"keep me")  # an unrelated cached file: must survive
    remote = RemoteFile("md17_ethanol.npz", (server.url("a/md17_ethanol.npz"),), "md17")
    with pytest.raises(ChecksumError) as err:
        fetch(remote, cache)
    msg = str(err.value)
    assert "md17_ethanol.npz" in msg and "nothing else was deleted" in msg and str(pins.path) in msg
    assert (cache / "other.npz").read_bytes() == b"keep me"
    assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) == ["other.npz"]


def test_cached_file_mismatching_pin_is_an_error_and_is_kept(pins, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "md17_ethanol.npz").write_bytes(b"not the pinned file")
    pins("md17_ethanol.npz", ethanol_npz())
    with pytest.raises(ChecksumError, match="delete it and rerun"):
        fetch(RemoteFile("md17_ethanol.npz", (dead_url("x"),), "md17"), cache)
    assert (cache / "md17_ethanol.npz").read_bytes() == b"not the pinned file"


def test_connection_dropped_mid_file_retry_completes(server, pins, tmp_path):
    data = ethanol_npz()
    server.routes["/a/md17_ethanol.npz"] = [("drop", data, len(data) // 3), ("ok", data)]
    pins("md17_ethanol.npz", data)
    got = fetch(RemoteFile("md17_ethanol.npz", (server.url("a/md17_ethanol.npz"),), "md17"),
                tmp_path / "cache", retries=2)
    assert server.hits["/a/md17_ethanol.npz"] == 2
    assert got.path.read_bytes() == data


def test_transfer_stalled_mid_file_is_restarted(server, pins, tmp_path):
    data = ethanol_npz()
    server.routes["/a/md17_ethanol.npz"] = [("stall", data, 1000, 1.0), ("ok", data)]
    pins("md17_ethanol.npz", data)
    got = fetch(RemoteFile("md17_ethanol.npz", (server.url("a/md17_ethanol.npz"),), "md17"),
                tmp_path / "cache", retries=1, timeout=(2.0, 0.3))
    assert server.hits["/a/md17_ethanol.npz"] == 2 and got.path.read_bytes() == data


def test_connection_dropped_every_time_fails_cleanly(server, pins, tmp_path):
    data = ethanol_npz()
    server.routes["/a/md17_ethanol.npz"] = [("drop", data, 1000)]
    pins("md17_ethanol.npz", data)
    cache = tmp_path / "cache"
    with pytest.raises(OfflineError, match="transfer interrupted"):
        fetch(RemoteFile("md17_ethanol.npz", (server.url("a/md17_ethanol.npz"),), "md17"), cache, retries=1)
    assert server.hits["/a/md17_ethanol.npz"] == 2
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []  # no partial file


def test_404_on_first_mirror_uses_the_second(server, pins, tmp_path):
    data = ethanol_npz()
    server.routes["/b/md17_ethanol.npz"] = [("ok", data)]
    pins("md17_ethanol.npz", data)
    ds = make_dataset(tmp_path / "ds", "ds", "md17", md17_params([server.url("a/"), server.url("b/")], tmp_path),
                      seed=0, progress=False)
    assert server.hits == {"/a/md17_ethanol.npz": 1, "/b/md17_ethanol.npz": 1}
    assert ds.info["sources"][0]["url"] == server.url("b/md17_ethanol.npz")


def test_pre_2023_name_is_the_fallback(server, pins, tmp_path):
    data = ethanol_npz()
    server.routes["/a/ethanol_dft.npz"] = [("ok", data)]
    pins("md17_ethanol.npz", data)
    ds = make_dataset(tmp_path / "ds", "ds", "md17", md17_params([server.url("a/")], tmp_path), seed=0,
                      progress=False)
    assert ds.info["sources"][0]["url"].endswith("/a/ethanol_dft.npz")
    assert (tmp_path / "cache" / "md17_ethanol.npz").exists()  # stored under the current name


def test_all_down_offline_error_within_seconds(pins, tmp_path):
    mirrors = [dead_url(), dead_url("mirror/")]
    start = time.perf_counter()
    with pytest.raises(OfflineError) as err:
        make_dataset(tmp_path / "ds", "ds", "md17", md17_params(mirrors, tmp_path), seed=0, progress=False)
    assert time.perf_counter() - start < 5.0
    msg = str(err.value)
    assert "md17_ethanol.npz" in msg and "mdhorizon data import md17 /path/to/dir" in msg
    for url in download.expand_urls(mirrors, ["md17_ethanol.npz", "ethanol_dft.npz"]):
        assert url in msg  # every URL tried (or skipped as on a dead host) is named
    assert not (tmp_path / "ds" / "manifest.json").exists()


def test_unpinned_file_records_sha256_and_warns_once(server, pins, tmp_path):
    data = ethanol_npz()
    server.routes["/a/md17_ethanol.npz"] = [("ok", data)]
    remote = RemoteFile("md17_ethanol.npz", (server.url("a/md17_ethanol.npz"),), "md17")
    with pytest.warns(UserWarning, match="no published checksum"):
        fetch(remote, tmp_path / "cache")
    pinned = json.loads(pins.path.read_text())["files"]["md17_ethanol.npz"]
    assert pinned["sha256"] == hashlib.sha256(data).hexdigest() and "first download" in pinned["source"]
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second use is verified silently
        fetch(remote, tmp_path / "cache")
        fetch(remote, tmp_path / "cache2")  # a fresh download is verified against the recorded pin
    server.routes["/a/md17_ethanol.npz"] = [("ok", ethanol_npz(seed=5))]
    with pytest.raises(ChecksumError):
        fetch(remote, tmp_path / "cache3")


def test_md5_pins_are_accepted(server, pins, tmp_path):
    data = b"some bytes"
    server.routes["/f.bin"] = [("ok", data)]
    pins("f.bin", data, alg="md5")
    assert fetch(RemoteFile("f.bin", (server.url("f.bin"),), "ala2"), tmp_path).md5 == hashlib.md5(data).hexdigest()
    pins("g.bin", value="0" * 32, alg="md5")
    server.routes["/g.bin"] = [("ok", data)]
    with pytest.raises(ChecksumError):
        fetch(RemoteFile("g.bin", (server.url("g.bin"),), "ala2"), tmp_path)


# ---- import of local copies -----------------------------------------------------------------
def test_data_import_verifies_and_converts(pins, tmp_path, capsys):
    from benchmark.cli import main

    data = ethanol_npz()
    pins("md17_ethanol.npz", data)
    src = tmp_path / "copies"
    src.mkdir()
    (src / "ethanol_dft.npz").write_bytes(data)  # an old-name copy is accepted
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "name: s\nseeds: [0]\ndatasets:\n"
        f"  md17_ethanol: {{kind: md17, params: {{molecule: ethanol, mirrors: ['{dead_url()}']}}}}\n"
        "tasks:\n  w:\n    protocol: window\n    datasets: [md17_ethanol]\n"
        "    split: {strategy: blocks}\n    params: {delta_frame: 4, num_queries: 2, n_train: 4, n_val: 2, n_test: 2}\n"
        "methods:\n  static:\n")
    work = tmp_path / "work"
    assert main(["data", "import", "md17", str(src), "--suite", str(suite), "--work-dir", str(work),
                 "--no-progress"]) == 0
    ds = open_dataset(work / "data" / "md17_ethanol", verify=True)
    assert ds.trajectory(0).n_atoms == 3
    assert "converted md17_ethanol" in capsys.readouterr().out
    # a corrupted local copy is refused, with the checksum error, and converts nothing
    (src / "ethanol_dft.npz").write_bytes(data[:-10])
    (work / "data" / ".downloads" / "md17" / "md17_ethanol.npz").unlink()
    assert main(["data", "import", "md17", str(src), "--suite", str(suite), "--work-dir", str(work),
                 "--no-progress"]) == 1
    assert "differs from the value pinned" in capsys.readouterr().err
    assert not (work / "data" / ".downloads" / "md17" / "md17_ethanol.npz").exists()
    # offline `data make` of the suite: the clear error, exit code 1
    assert main(["data", "make", "md17_ethanol", "--suite", str(suite), "--work-dir", str(tmp_path / "w2"),
                 "--no-progress"]) == 1
    assert "mdhorizon data import md17" in capsys.readouterr().err


# ---- rMD17: converted, but windows refused ---------------------------------------------------
def test_rmd17_converted_and_windows_refused(server, pins, tmp_path):
    archive = rmd17_archive()
    server.routes["/fig/rmd17.tar.bz2"] = [("404",)]
    server.routes["/mc/rmd17.tar.bz2"] = [("ok", archive)]
    with pytest.warns(UserWarning, match="no published checksum"):
        ds = make_dataset(tmp_path / "rmd17_aspirin", "rmd17_aspirin", "rmd17",
                          {"molecule": "aspirin", "mirrors": [server.url("fig/"), server.url("mc/")],
                           "cache_dir": str(tmp_path / "cache")}, seed=0, progress=False)
    assert ds.info["time_series"] is False
    traj = ds.trajectory(0)
    assert traj.n_frames == 50 and traj.n_atoms == 5
    assert np.load(traj.path / "md17_indices.npy").shape == (50,)
    assert "traj_000/forces.npy" in ds.manifest["files"]
    spec = WindowSpec(delta_frame=4, num_queries=2, n_train=2, n_val=2, n_test=2)
    with pytest.raises(TaskError, match="not a time series"):
        build_window_split(ds, spec, "blocks", {}, seed=0)


# ---- alanine dipeptide: pdb + xtc, nm -> A, one trajectory per run ---------------------------
ALA2_ATOMS = [  # (residue, name, element): ACE, ALA, NME as in mdshare's pdb (22 atoms)
    ("ACE", "HH31", "H"), ("ACE", "CH3", "C"), ("ACE", "HH32", "H"), ("ACE", "HH33", "H"), ("ACE", "C", "C"),
    ("ACE", "O", "O"), ("ALA", "N", "N"), ("ALA", "H", "H"), ("ALA", "CA", "C"), ("ALA", "HA", "H"),
    ("ALA", "CB", "C"), ("ALA", "HB1", "H"), ("ALA", "HB2", "H"), ("ALA", "HB3", "H"), ("ALA", "C", "C"),
    ("ALA", "O", "O"), ("NME", "N", "N"), ("NME", "H", "H"), ("NME", "C", "C"), ("NME", "H1", "H"),
    ("NME", "H2", "H"), ("NME", "H3", "H")]
ALA2_BONDS = [(0, 1), (1, 2), (1, 3), (1, 4), (4, 5), (4, 6), (6, 7), (6, 8), (8, 9), (8, 10), (10, 11),
              (10, 12), (10, 13), (8, 14), (14, 15), (14, 16), (16, 17), (16, 18), (18, 19), (18, 20), (18, 21)]


def ala2_files(tmp_path, n_frames=30, box_nm=None, shift_frames=()):
    """pdb + three xtc runs (nm, 1 ps/frame) written by mdtraj; returns {name: bytes} and the xyz (nm)."""
    import mdtraj

    top = mdtraj.Topology()
    chain = top.add_chain()
    residues = {}
    for res, name, el in ALA2_ATOMS:
        if res not in residues:
            residues[res] = top.add_residue(res, chain)
        top.add_atom(name, mdtraj.element.get_by_symbol(el), residues[res])
    atoms = list(top.atoms)
    for i, j in ALA2_BONDS:
        top.add_bond(atoms[i], atoms[j])
    # a chain of atoms 0.12 nm apart along the bond tree, plus thermal noise
    rng = np.random.default_rng(0)
    base = np.zeros((22, 3))
    for i, j in ALA2_BONDS:
        step = rng.normal(size=3)
        base[j] = base[i] + 0.12 * step / np.linalg.norm(step)
    base += 1.0
    out, xyz_runs = {}, []
    d = tmp_path / "ala2_src"
    d.mkdir(exist_ok=True)
    mdtraj.Trajectory(base[None].astype(np.float32), top).save_pdb(str(d / "alanine-dipeptide-nowater.pdb"))
    out["alanine-dipeptide-nowater.pdb"] = (d / "alanine-dipeptide-nowater.pdb").read_bytes()
    for run in range(3):
        xyz = base + 0.002 * rng.normal(size=(n_frames, 22, 3)) + 0.01 * run
        xyz_runs.append(xyz.copy())
        if box_nm is not None:
            for f in shift_frames:  # wrap a few atoms of some frames across the box (as PBC output can)
                xyz[f, :5, 0] += box_nm
        traj = mdtraj.Trajectory(xyz.astype(np.float32), top, time=np.arange(n_frames, dtype=np.float32),
                                 unitcell_lengths=None if box_nm is None else np.full((n_frames, 3), box_nm),
                                 unitcell_angles=None if box_nm is None else np.full((n_frames, 3), 90.0))
        name = f"alanine-dipeptide-{run}-250ns-nowater.xtc"
        traj.save_xtc(str(d / name))
        out[name] = (d / name).read_bytes()
    return out, xyz_runs


def test_ala2_three_runs_converted_nm_to_angstrom(server, pins, tmp_path):
    files, xyz_runs = ala2_files(tmp_path, box_nm=2.5, shift_frames=(3, 7))
    for name, data in files.items():
        server.routes[f"/cmb/{name}"] = [("ok", data)]
        pins(name, data, alg="md5")  # mdshare publishes md5
    ds = make_dataset(tmp_path / "ala2", "ala2", "ala2", {"mirrors": [dead_url(), server.url("cmb/")],
                                                          "cache_dir": str(tmp_path / "cache")},
                      seed=0, progress=False)
    assert len(ds) == 3  # one trajectory per run: windows can never cross a run boundary
    for run in range(3):
        traj = ds.trajectory(run)
        assert traj.n_atoms == 22 and traj.n_frames == 30 and traj.dt_fs == 1000.0
        assert traj.atomic_numbers.tolist()[:6] == [1, 6, 1, 1, 6, 8]
        np.testing.assert_allclose(traj.positions, xyz_runs[run] * 10.0, atol=0.02)  # nm -> A, unwrapped
        assert len(traj.bonds) == 21
    spec = WindowSpec(delta_frame=5, num_queries=3, n_train=6, n_val=3, n_test=3)
    split = build_window_split(ds, spec, "by_trajectory",
                               {"train_trajectories": [0], "val_trajectories": [1], "test_trajectories": [2]},
                               seed=0)
    for part, run in zip(("train", "val", "test"), range(3)):
        assert set(split["parts"][part]["traj"]) == {run}
        t0 = np.array(split["parts"][part]["t0"])
        assert (t0 + np.array(split["parts"][part]["offsets"]).max(1) < 30).all()


def test_unwrap_molecule_removes_box_jumps():
    from benchmark.data.ala2 import unwrap_molecule

    rng = np.random.default_rng(0)
    # a 4-atom chain (bonds 0.1-0.2 A) drifting by 0.3 per frame through a box of edge 1: wrapped output
    chain = np.cumsum(0.1 * rng.normal(size=(1, 4, 3)), axis=1) + 0.01 * rng.normal(size=(10, 4, 3))
    xyz = chain + 0.3 * np.arange(10)[:, None, None]
    wrapped = xyz % 1.0
    fixed = unwrap_molecule(wrapped, np.array([[0, 1], [1, 2], [2, 3]]), np.full((10, 3), 1.0))
    shift = fixed - xyz  # one lattice translation for every frame and atom
    np.testing.assert_allclose(shift, np.broadcast_to(shift[0, 0], shift.shape), atol=1e-9)
    np.testing.assert_allclose(shift[0, 0], np.round(shift[0, 0]), atol=1e-9)
