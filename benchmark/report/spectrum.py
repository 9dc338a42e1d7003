"""GF-NODE Fig. 4: the temporal spectrum of the spatial (graph Fourier) modes of a trained GF-NODE.

The paper (Sun et al., Sec. 5.7, Fig. 4, benzene) plots the Fourier coefficients
over temporal frequency (ps^-1) of spatial modes 0-3 and reads off that low
spatial modes carry slow, high spatial modes fast temporal signals.  Here, for
the trained ``gfnode`` model of one cell (:func:`fig4_cell`: the GF-NODE
Table 1 task, benzene else malonaldehyde, the lowest seed):

* ``n_contexts`` test windows, evenly spaced over the test part; for each, a
  dense uniform grid of offsets ``stride, 2 stride, ..., <= delta_frame``
  frames after t0 (stride = ceil(delta_frame / max_points));
* three per-mode coefficient series c_k(t) [3] on the same Laplacian basis
  U (the model's own :meth:`~methods.gfnode.GFNODEModel.basis`, 1+2-hop
  molecular graph; ``max(4, num_modes)`` lowest modes, mode 0 = the constant
  eigenvector, i.e. the centroid):
  ``reference``  U^T (x_true(t) - c0), the simulated trajectory, c0 = the t0 centroid;
  ``prediction`` U^T (x_pred(t) - c0), the model's decoded prediction;
  ``model state`` x~_k(t), the spectral state the model's ODE evolves
  (:meth:`~methods.gfnode.GFNODEModel.spectral_trajectory`; its ``num_modes``
  modes only), before the inverse transform and the decoder;
* the power spectrum of each series: mean removed, Hann window, |rfft|^2 summed
  over x, y, z and averaged over the windows; the zero-frequency bin is dropped
  and each spectrum normalised to sum 1 (the fraction of the mode's temporal
  variance per frequency bin), with its centroid (mean frequency).

The linear per-mode dynamics d[x~ v~]_k/dtau = [x~ v~]_k P_k oscillate at
|Im eig(P_k)| / (2 pi horizon): these frequencies are recorded too.
Everything runs on the CPU; the same model gives the same numbers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from benchmark.config import Cell, ConfigError, Suite
from benchmark.io import sha256_file
from benchmark.report.figures import pyplot, save_figure
from methods.nn.laplacian import adjacency

NAME = "gfnode_fig4"
VARIANT = "gfnode"
TABLE = "gfnode_table1"  # the task whose trained model is analysed: GF-NODE Table 1 (irregular windows)
MOLECULES = ("benzene", "malonaldehyde")  # the paper's Fig. 4 is benzene
MIN_MODES = 4  # the paper shows modes 0-3
SOURCES = ("reference", "prediction", "model_state")


def fig4_cell(suite: Suite) -> Cell | None:
    """The cell whose trained model Fig. 4 analyses, or None when the suite has none."""
    for task, entry in suite.tasks.items():
        if TABLE not in entry.tables or VARIANT not in suite.task_methods(task):
            continue
        datasets = suite.task_datasets(task)
        hits = [d for m in MOLECULES for d in datasets if m in d] + datasets
        if hits:
            return Cell(task, hits[0], VARIANT, min(suite.seeds))
    return None


def fig4_outputs(suite: Suite) -> list[Path]:
    """The figure and its JSON sidecar, when the suite trains the model they need."""
    if fig4_cell(suite) is None:
        return []
    plots = suite.results_dir / "plots"
    return [plots / f"{NAME}.png", plots / f"{NAME}.json"]


def figure_mismatch(suite: Suite) -> str | None:
    """Why the committed figure does not go with the committed run of its cell (None: it does).

    The figure is drawn from a trained model, which lives in work/ and is never committed; its JSON
    records the run's config hash, train time and data checksum, compared here with the run file."""
    from benchmark.io import read_json

    cell = fig4_cell(suite)
    png = suite.results_dir / "plots" / f"{NAME}.png"
    run_path = suite.run_path(cell)
    if not png.exists() or not png.with_suffix(".json").exists():
        return f"{png} or its .json is missing"
    if not run_path.exists():
        return f"{png} exists but the run it analyses, {run_path}, does not"
    data, run = read_json(png.with_suffix(".json")), read_json(run_path)
    if data["cell"] != cell.__dict__:
        return f"{png} analyses another cell"
    for key in ("config_hash", "train_seconds", "dataset_sha256"):
        if key in data["source"] and data["source"][key] != run[key]:
            return f"{png}: {key} differs from {run_path}"
    return None


def fig4_inputs(suite: Suite) -> list[Path]:
    """The Snakemake inputs of the figure: its cell's model, split and run, except on a checkout
    without the model (a fresh clone: models are never committed) whose committed figure goes with
    the committed run: then nothing, so that no clone retrains a model only to redraw a figure that
    is already current.  Delete the figure (or train the model) to redraw it."""
    cell = fig4_cell(suite)
    model = suite.model_path(cell)
    if not model.exists() and figure_mismatch(suite) is None:
        return []
    return [model, suite.split_path(cell.task, cell.dataset), suite.run_path(cell)]


# ------------------------------------------------------------------ the numbers
def dense_offsets(delta_frame: int, max_points: int) -> np.ndarray:
    """Uniform offsets stride, 2 stride, ... <= delta_frame (frames), at most ``max_points``."""
    stride = max(1, math.ceil(delta_frame / max_points))
    return stride * np.arange(1, delta_frame // stride + 1)


def power_spectrum(series: np.ndarray, dt_fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Series [W, T, M, 3] sampled every ``dt_fs`` -> (frequency [F] ps^-1, power [M, F]).

    Per window and mode: mean over time removed, Hann window, |rfft|^2 summed over
    x, y, z; averaged over the W windows; the zero-frequency bin dropped; each mode
    normalised to sum 1 (all-zero series stay zero).
    """
    T = series.shape[1]
    centred = series - series.mean(axis=1, keepdims=True)
    window = np.hanning(T)[None, :, None, None]
    power = (np.abs(np.fft.rfft(centred * window, axis=1)) ** 2).sum(axis=-1).mean(axis=0)  # [F, M]
    freq = np.fft.rfftfreq(T, d=dt_fs) * 1000.0  # 1/fs -> 1/ps
    power = power[1:].T
    total = power.sum(axis=1, keepdims=True)
    return freq[1:], np.divide(power, total, out=np.zeros_like(power), where=total > 0)


def centroid(freq: np.ndarray, power: np.ndarray) -> list[float]:
    """Mean frequency of each normalised spectrum [M, F] (ps^-1)."""
    return [float(f) for f in power @ freq]


def project(positions: torch.Tensor, origin: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    """Positions [B, T, N, 3] minus ``origin`` [B, 1, 1, 3] on the basis U [B|1, N, M] -> [B, T, M, 3]."""
    return torch.einsum("bnm,btnd->btmd", U.expand(positions.shape[0], -1, -1), positions - origin)


def true_positions(sample_set, idx: np.ndarray, offsets: np.ndarray) -> torch.Tensor:
    """The simulated positions [B, T, N, 3] of windows ``idx`` at t0 + ``offsets`` (test data)."""
    out = []
    for i in idx:
        traj = sample_set.dataset.trajectory(int(sample_set.traj_idx[i]))
        frames = np.asarray(traj.positions[int(sample_set.t0[i]) + offsets])
        out.append(frames[:, sample_set.atom_index])
    return torch.from_numpy(np.stack(out).astype(np.float32))


def ode_frequencies(model, horizon_fs: float) -> list[float]:
    """|Im eig(P_k)| / (2 pi horizon) of the learned [x~ v~] dynamics of each mode (ps^-1)."""
    eig = torch.linalg.eigvals(model.dynamics.w_x.detach().double())
    return [float(f) for f in eig.imag.abs().amax(dim=-1) / (2 * math.pi) / (horizon_fs / 1000.0)]


def mode_spectra(method, sample_set, n_contexts: int = 32, max_points: int = 512) -> dict:
    """Fig. 4's data for a trained GF-NODE ``method`` on test windows of ``sample_set``."""
    model = method.model
    if model.no_fourier:
        raise ValueError("Fig. 4 needs graph Fourier modes; this model uses the identity basis (no_fourier)")
    idx = np.unique(np.linspace(0, len(sample_set) - 1, min(n_contexts, len(sample_set))).round().astype(int))
    offsets = dense_offsets(int(sample_set.spec.delta_frame), max_points)
    context = sample_set.context(idx)
    times = torch.from_numpy(offsets.astype(np.float32) * sample_set.dt_fs)[None].expand(len(idx), -1)
    with torch.no_grad():
        x = context.positions
        U = model.basis(context, x, model.pair_lists(context, x), modes=max(MIN_MODES, model.num_modes))
        origin = x.mean(dim=1)[:, None, None]
        series = {"reference": project(true_positions(sample_set, idx, offsets), origin, U),
                  "prediction": project(method.predict(context, times.contiguous()), origin, U),
                  "model_state": method.spectral_trajectory(context, times.contiguous())["positions"]}
    dt_fs = float(offsets[0] * sample_set.dt_fs)
    spectra, centroids = {}, {}
    for name in SOURCES:
        freq, power = power_spectrum(series[name].double().numpy(), dt_fs)
        spectra[name] = [[float(f"{p:.6g}") for p in row] for row in power]
        centroids[name] = [round(c, 4) for c in centroid(freq, power)]
    # (a molecule of N atoms has N modes: fewer than asked for when N is small)
    out = {"n_modes": U.shape[-1], "model_modes": len(spectra["model_state"]), "windows": idx.tolist(),
           "grid": {"stride_frames": int(offsets[0]), "n_times": len(offsets), "dt_fs": dt_fs,
                    "span_fs": float(offsets[-1] * sample_set.dt_fs)},
           "frequency_per_ps": [float(f"{f:.6g}") for f in freq], "spectra": spectra,
           "centroid_per_ps": centroids}
    if not model.no_ode:
        horizon_fs = sample_set.spec.delta_frame * sample_set.dt_fs
        out["ode_frequency_per_ps"] = [round(f, 4) for f in ode_frequencies(model, horizon_fs)]
    if context.edges is not None:  # one basis for every window: its Laplacian eigenvalues
        adj = adjacency(context.edges, x.shape[1], torch.float64)
        lap = torch.diag_embed(adj.sum(-1)) - adj
        u = U[0].double()
        eig = torch.einsum("nm,nk,km->m", u, lap, u)
        every = torch.linalg.eigvalsh(lap)
        out["laplacian_eigenvalues"] = [round(float(e), 4) for e in eig]
        # a degenerate eigenvalue's modes are one arbitrary basis of its eigenspace (as in the model)
        out["laplacian_multiplicity"] = [int(((every - e).abs() < 1e-6).sum()) for e in eig]
    return out


# ------------------------------------------------------------------ from a suite
def fig4_data(suite: Suite, n_contexts: int = 32, max_points: int = 512) -> dict:
    from benchmark.runner import _open, load_method

    cell = fig4_cell(suite)
    if cell is None:
        raise ConfigError(f"{suite.path}: no {VARIANT!r} method entry on a task tagged "
                          f"`tables: [{TABLE}]`, so no model for GF-NODE Fig. 4")
    record = torch.load(suite.model_path(cell), map_location="cpu", weights_only=False)
    method = load_method(suite, cell, record) if record["status"] == "ok" else None
    data = {"cell": cell.__dict__, "status": record["status"], "note": record["note"],
            "source": {"model": str(suite.model_path(cell).relative_to(suite.work_dir)),
                       "model_sha256": sha256_file(suite.model_path(cell)),
                       "config_hash": suite.config_hash(cell), "train_seconds": record["train_seconds"]}}
    if method is not None:
        ds, _, sets = _open(suite, cell, ("test",))
        data["source"]["dataset_sha256"] = ds.checksum
        torch.manual_seed(cell.seed)
        data.update(mode_spectra(method, sets["test"], n_contexts, max_points))
    return data


# ------------------------------------------------------------------ the figure
LABELS = {"reference": "reference (simulation)", "prediction": "GF-NODE prediction",
          "model_state": "GF-NODE ODE state x~(t)"}
STYLES = {"reference": dict(color="k", lw=1.4), "prediction": dict(color="tab:blue", lw=1.2),
          "model_state": dict(color="tab:orange", lw=1.2, ls="--")}


def plot_fig4(data: dict, path: Path) -> None:
    plt = pyplot()
    cell = data["cell"]
    where = f"{cell['dataset']}, task {cell['task']}, seed {cell['seed']}"
    if data["status"] != "ok":
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.text(0.5, 0.5, f"no trained model: status {data['status']}\n{data['note']}"[:300],
                ha="center", va="center", wrap=True)
        ax.set_axis_off()
        fig.suptitle(f"GF-NODE Fig. 4 ({where})")
        save_figure(fig, path, data)
        return
    M = data["n_modes"]
    freq = np.asarray(data["frequency_per_ps"])
    fig, axes = plt.subplots(1, M, figsize=(3.6 * M, 3.4), sharey=True, squeeze=False)
    for k, ax in enumerate(axes[0]):
        for name in SOURCES:
            if k >= len(data["spectra"][name]):
                continue
            c = data["centroid_per_ps"][name][k]
            ax.plot(freq, np.maximum(data["spectra"][name][k], 1e-12), label=f"{LABELS[name]} (mean {c:.1f})",
                    **STYLES[name])
        title = f"spatial mode {k}"
        if "laplacian_eigenvalues" in data:
            mult = data["laplacian_multiplicity"][k]
            title += f" (λ = {data['laplacian_eigenvalues'][k]:.2f}" + (f", {mult}-fold)" if mult > 1 else ")")
        if k >= data["model_modes"]:
            title += "\nnot evolved by the model"
        ax.set(title=title, xlabel="temporal frequency (ps$^{-1}$)", yscale="log", ylim=(1e-8, 1.5))
        ax.title.set_fontsize(9)
        ax.legend(fontsize=6, loc="lower left")
    axes[0][0].set_ylabel("fraction of the mode's power")
    grid = data["grid"]
    fig.suptitle(f"GF-NODE Fig. 4: temporal spectrum of the graph Fourier modes ({where}; "
                 f"{len(data['windows'])} test windows, {grid['n_times']} times every {grid['dt_fs']:g} fs)",
                 fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, data)


def write_fig4(suite: Suite, n_contexts: int = 32, max_points: int = 512) -> Path:
    path = suite.results_dir / "plots" / f"{NAME}.png"
    plot_fig4(fig4_data(suite, n_contexts, max_points), path)
    return path
