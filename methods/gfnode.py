"""GF-NODE: EGNN encoder -> graph Fourier transform -> neural ODE per mode -> inverse GFT -> EGNN decoder.

Paper: Sun et al. 2024/25, "Graph Fourier Neural ODEs: Modeling Spatial-temporal
Multi-scales in Molecular Dynamics" (ICLR 2025 submission), Sec. 4, eqs. 1-14,
Appendix B.  Pipeline for one sample with atoms at x (t0) and velocities v:

1. h = Linear([|v|, Z/Zmax]) (2 -> hidden); EGNN encoder, ``n_layers`` layers
   (eqs. 1-3) -> h, x;
2. GFT (eqs. 4-5): U = eigenvectors of L = D - A of the 1+2-hop graph (the
   task's molecular graph; liquids: the radius graph at t0), keep the
   ``num_modes`` lowest; H~ = U^T H, [X~, V~] = U^T [x - mean(x), v];
3. neural ODE per mode (eqs. 6-7), as the authors' code: linear dynamics
   dH~_k/dt = H~_k W_k (W_k [F, F]) and d[X~ V~]_k/dt = [X~ V~]_k P_k
   (P_k [2, 2]: mixes the two vectors, so E(3)-equivariant), integrated with
   torchdiffeq dopri5 (rtol 1e-3, atol 1e-4) to tau = offset / horizon
   (the authors' offset / delta_frame) over the union of the batch's times;
4. inverse GFT with zero padding (eqs. 8-10) and a residual:
   h(t) = h + SiLU(U H~(t)), x(t) = x + U X~(t), v(t) = v + U V~(t);
5. EGNN decoder (eqs. 11-13), ``n_layers`` layers of width hidden + 32 on
   [h(t), emb(time)], one graph copy per target time; prediction = its x.

Ablations (GF-NODE Table 1, lower part) as parameters of this module:
``no_fourier`` (identity basis: every atom is a "mode") and ``no_ode`` (the
feed-forward map H~ W instead of the ODE, the same for every target time, as
in the authors' code).

Variants (parameters; the defaults keep the committed runs' behaviour, so a
committed config still means what it computed):

* ``time_embedding``: what the decoder's sinusoidal time embedding embeds.
  ``offset`` (default): tau * ``time_scale``, the query offset as a fraction
  of the horizon (a deviation, see below).  ``slot``: the index 0..K-1 of the
  query time among the K of a sample, the "temporal positional encoding" of
  the paper's decoder (arXiv 2411.01600; the ICLR text gives only
  ``time_emb_dim: 32``); under irregular sampling it no longer tells the
  decoder *when* a slot is (only the ODE knows); protocol B's K query times
  are split into strided groups of ``train_queries`` times (offsets j,
  j + K/8, ..., as EGNO's), so each group's slots span the horizon as in
  training.  ``frames``: the raw offset in stored frames (1..delta_frame),
  what the authors' code embeds (``get_timestep_embedding(timeframes)`` in
  ``model/fourier_md.py``).  Only the embedding's input changes; the
  parameter shapes are the same for all three.
* ``no_fourier_weights`` (with ``no_fourier``): ``shared`` (default) one
  weight matrix for all atoms, a deviation (below); ``per_atom``: one weight
  matrix per atom index, [n_atoms, F, F] and [n_atoms, 2, 2], as the authors'
  code (``modes1 = N`` with the identity basis), which ties the model to one
  atom count and order (not permutation-equivariant, as the original).

Defaults (Appendix B, config_mdl7_no.json): hidden 64, 5 layers, num_modes 2,
time_emb_dim 32, dopri5 rtol 1e-3 atol 1e-4, batch 50, Adam lr 1e-4, weight
decay 1e-15, StepLR(2500, 0.5), MSE loss (eq. 14); ODE weights drawn
U(0, 1)/(C*C) as in the authors' code.

Deviations from the authors' code, and why:
* no SiLU on the x / v residual (the code applies it to the vector
  channels, which breaks rotation equivariance; the paper states equivariance);
* ``no_fourier`` (default ``no_fourier_weights: shared``): one weight matrix
  shared by all atoms instead of one per atom index (per-atom weights are not
  permutation-equivariant, and the number of atoms fixes the parameter
  shapes); ``per_atom`` is the authors' form;
* h and [x, v] are integrated in one ``odeint`` call (one adaptive step
  sequence whose error control covers both; the code makes two calls);
  the number of function evaluations is recorded (``fit`` facts) and capped
  at ``max_nfe`` (beyond it: fixed-step rk4, counted);
* the decoder's time embedding (default ``time_embedding: offset``) is of
  tau * ``time_scale`` (the code embeds the raw frame offset, at most 3000:
  ``frames``), so protocol B's 8000 offsets fit;
* for a symmetric molecule with a degenerate Fiedler eigenvalue the basis is
  not unique (as in the authors' code); eigenvector signs do not matter;
* edge attributes and velocity units as in :mod:`methods.egnn`.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.base import GraphMethod
from methods.nn.egnn import EGNN, initial_sq_dist
from methods.nn.embeddings import sinusoidal_embedding
from methods.nn.laplacian import adjacency, laplacian_modes
from methods.nn.model import GraphModel
from methods.nn.ode import ODESolver, gather_times, union_times

TIME_EMBEDDINGS = ("offset", "slot", "frames")  # the decoder's time embedding input (module docstring)
NO_FOURIER_WEIGHTS = ("shared", "per_atom")  # no_fourier: one weight set for all atoms, or one per atom


def check_variants(time_embedding: str, no_fourier_weights: str) -> None:
    """ValueError naming the parameter when a variant is not one of the known ones."""
    if time_embedding not in TIME_EMBEDDINGS:
        raise ValueError(f"time_embedding must be one of {', '.join(TIME_EMBEDDINGS)}, got {time_embedding!r}")
    if no_fourier_weights not in NO_FOURIER_WEIGHTS:
        raise ValueError(f"no_fourier_weights must be one of {', '.join(NO_FOURIER_WEIGHTS)}, "
                         f"got {no_fourier_weights!r}")


class SpectralDynamics(nn.Module):
    """The linear per-mode dynamics of h~ [B, M, F] and [x~ v~] [B, M, 3, 2]."""

    def __init__(self, hidden: int, modes: int):
        """``modes`` weight sets: one per Laplacian mode, one per atom (``no_fourier``, per-atom) or a
        single shared one (``no_fourier``, shared; broadcast over every atom)."""
        super().__init__()
        self.w_h = nn.Parameter(torch.rand(modes, hidden, hidden) / (hidden * hidden))
        self.w_x = nn.Parameter(torch.rand(modes, 2, 2) / 4.0)

    @staticmethod
    def _weights(w, m):
        """One weight per mode; a single shared weight (no_fourier) is broadcast over all m."""
        return w.expand(m, -1, -1) if w.shape[0] == 1 else w[:m]

    def forward(self, t, state):
        h, xv = state
        return (torch.einsum("bmf,mfo->bmo", h, self._weights(self.w_h, h.shape[1])),
                torch.einsum("bmdc,mce->bmde", xv, self._weights(self.w_x, xv.shape[1])))


class GFNODEModel(GraphModel):
    def __init__(self, n_layers=5, num_modes=2, time_emb_dim=32, time_scale=1000.0, no_fourier=False,
                 no_ode=False, solver="dopri5", rtol=1e-3, atol=1e-4, max_nfe=1000, time_embedding="offset",
                 no_fourier_weights="shared", **kw):
        super().__init__(**kw)
        check_variants(time_embedding, no_fourier_weights)
        if no_fourier and no_ode:
            raise ValueError("no_fourier and no_ode cannot both be set (as in the authors' code)")
        self.num_modes, self.no_fourier, self.no_ode = num_modes, no_fourier, no_ode
        self.time_emb_dim, self.time_scale, self.time_embedding = time_emb_dim, time_scale, time_embedding
        if time_embedding == "slot":  # slots as in training: K query times in strided groups of train_queries
            self.fixed_chunk = self.train_queries
        self.embedding = nn.Linear(2, self.hidden)
        self.encoder = EGNN(self.hidden, n_layers, edge_dim=1)
        if not no_fourier:
            weight_sets = num_modes
        else:
            weight_sets = self.n_atoms if no_fourier_weights == "per_atom" else 1
        self.dynamics = SpectralDynamics(self.hidden, weight_sets)
        self.decoder = EGNN(self.hidden + time_emb_dim, n_layers, edge_dim=1)
        self.solver = ODESolver(solver, rtol, atol, max_nfe)

    def basis(self, context, x, pairs, modes: int | None = None) -> torch.Tensor | None:
        """U [B|1, N, M] of the lowest M = ``modes`` (default ``num_modes``) Laplacian modes
        (None = identity basis)."""
        if self.no_fourier:
            return None
        N, modes = x.shape[1], modes or self.num_modes
        if context.edges is not None:
            return laplacian_modes(adjacency(context.edges.to(x.device), N, x.dtype), modes)[None]
        b, i, j = pairs
        adj = torch.zeros(x.shape[0], N, N, dtype=x.dtype, device=x.device)
        adj[b, i, j] = 1.0
        return laplacian_modes(torch.maximum(adj, adj.transpose(1, 2)), modes)

    def encode(self, context, x, v, feats, pairs):
        """Steps 1-2: the EGNN encoder on the B input graphs, then the GFT.

        Returns h [B, N, F], xe, ve [B, N, 3], the basis U [B|1, N, M] (None = identity)
        and the spectral states h~ [B, M, F], [x~ v~] [B, M, 3, 2] at t0.
        """
        B, N = x.shape[:2]
        g1 = self.graph(context, x, 1, pairs)
        x1, v1 = self.to_groups(x[:, None], g1), self.to_groups(v[:, None], g1)
        h, xe, ve = self.encoder(self.to_groups(self.embedding(feats)[:, None], g1), x1, v1, g1,
                                 initial_sq_dist(x1, g1))
        h, xe, ve = h.reshape(B, N, -1), xe.reshape(B, N, 3), ve.reshape(B, N, 3)
        mean = xe.mean(dim=1, keepdim=True)
        xv = torch.stack([xe - mean, ve], dim=-1)  # [B, N, 3, 2]
        U = self.basis(context, x, pairs)
        if U is None:
            return h, xe, ve, U, h, xv
        h_s = torch.einsum("bnm,bnf->bmf", U.expand(B, -1, -1), h)
        xv_s = torch.einsum("bnm,bndc->bmdc", U.expand(B, -1, -1), xv)
        return h, xe, ve, U, h_s, xv_s

    def evolve(self, h_s, xv_s, tau):
        """Step 3: the spectral states at every tau [B, K] -> [B, K, M, F], [B, K, M, 3, 2]."""
        K = tau.shape[1]
        if self.no_ode:
            dh, dxv = self.dynamics(None, (h_s, xv_s))
            return dh[:, None].expand(-1, K, -1, -1), dxv[:, None].expand(-1, K, -1, -1, -1)
        t_union, where = union_times(tau)
        sol_h, sol_xv = self.solver.solve(self.dynamics, (h_s, xv_s), t_union)  # [L, B, M, ...]
        return gather_times(sol_h, where), gather_times(sol_xv, where)  # [B, K, M, ...]

    def spectral_trajectory(self, context, query_times) -> dict:
        """The spectral-domain states the model evolves (steps 1-3), at ``query_times`` [B, K] fs.

        ``basis`` U [B|1, N, M] (None for ``no_fourier``: one "mode" per atom), ``features``
        h~(t) [B, K, M, F], ``positions`` x~(t) and ``velocities`` v~(t) [B, K, M, 3]: the
        coefficients of the centred encoder positions / velocities on each Laplacian mode
        (before the inverse GFT and the decoder).
        """
        x, v, feats = self.node_inputs(context)
        _, _, _, U, h_s, xv_s = self.encode(context, x, v, feats, self.pair_lists(context, x))
        h_t, xv_t = self.evolve(h_s, xv_s, self.tau(context, query_times))
        return {"basis": U, "features": h_t, "positions": xv_t[..., 0], "velocities": xv_t[..., 1]}

    def time_input(self, tau: torch.Tensor) -> torch.Tensor:
        """What the decoder's time embedding embeds for query times tau [B, K] (offset / horizon),
        by ``time_embedding``: tau * time_scale, the slot index 0..K-1, or the offset in frames."""
        if self.time_embedding == "slot":
            return torch.arange(tau.shape[1], dtype=tau.dtype, device=tau.device).expand_as(tau)
        if self.time_embedding == "frames":
            return tau * self.horizon
        return tau * self.time_scale

    def forward_chunk(self, context, query_times):
        x, v, feats = self.node_inputs(context)
        B, N = x.shape[:2]
        K = query_times.shape[1]
        pairs = self.pair_lists(context, x)
        # 1-2. encoder on the B input graphs, graph Fourier transform of h and of the centred x / v
        h, xe, ve, U, h_s, xv_s = self.encode(context, x, v, feats, pairs)
        # 3. spectral dynamics to every query time
        tau = self.tau(context, query_times)
        h_t, xv_t = self.evolve(h_s, xv_s, tau)
        # 4. inverse transform (zero padding of the dropped modes) with residual
        if U is not None:
            h_t = torch.einsum("bnm,bkmf->bknf", U.expand(B, -1, -1), h_t)
            xv_t = torch.einsum("bnm,bkmdc->bkndc", U.expand(B, -1, -1), xv_t)
        h_t = h[:, None] + torch.nn.functional.silu(h_t)
        x_t = xe[:, None] + xv_t[..., 0]
        v_t = ve[:, None] + xv_t[..., 1]
        # 5. decoder with the time embedding, one graph per (sample, target time)
        temb = sinusoidal_embedding(self.time_input(tau), self.time_emb_dim)[:, :, None].expand(-1, -1, N, -1)
        gk = self.graph(context, x, K, pairs)
        x0k = self.to_groups(x[:, None].expand(-1, K, -1, -1), gk)
        _, out, _ = self.decoder(self.to_groups(torch.cat([h_t, temb], dim=-1), gk),
                                 self.to_groups(x_t.contiguous(), gk), self.to_groups(v_t.contiguous(), gk), gk,
                                 initial_sq_dist(x0k, gk))
        return out.reshape(B, K, N, 3)


class GFNODEMethod(GraphMethod):
    name = "gfnode"
    description = "GF-NODE: EGNN encoder, graph Fourier modes evolved by a neural ODE, EGNN decoder"
    paper = "Sun et al. 2024/25 (GF-NODE), Sec. 4 eqs. 1-14, Appendix B"
    defaults = {**GraphMethod.defaults, "num_modes": 2, "time_emb_dim": 32, "time_scale": 1000.0,
                "no_fourier": False, "no_ode": False, "solver": "dopri5", "rtol": 1e-3, "atol": 1e-4,
                "max_nfe": 1000, "time_embedding": "offset", "no_fourier_weights": "shared"}
    test_params = {"hidden": 8, "n_layers": 2, "batch_size": 4, "time_emb_dim": 4, "eval_every": 1,
                   "n_windows": 8, "n_val_windows": 4}

    def __init__(self, **params):
        super().__init__(**params)
        check_variants(self.params["time_embedding"], self.params["no_fourier_weights"])

    def build(self, **setup):
        p = self.params
        return GFNODEModel(n_layers=p["n_layers"], num_modes=p["num_modes"], time_emb_dim=p["time_emb_dim"],
                           time_scale=p["time_scale"], no_fourier=p["no_fourier"], no_ode=p["no_ode"],
                           solver=p["solver"], rtol=p["rtol"], atol=p["atol"], max_nfe=p["max_nfe"],
                           time_embedding=p["time_embedding"], no_fourier_weights=p["no_fourier_weights"],
                           hidden=p["hidden"], cutoff=p["cutoff"], dense_fraction=p["dense_fraction"],
                           neighbor_backend=p["neighbor_backend"], max_graphs=p["max_graphs"], **setup)

    def spectral_trajectory(self, context, query_times) -> dict:
        """The trained model's spectral states at ``query_times`` [B, K] fs (GF-NODE Fig. 4);
        see :meth:`GFNODEModel.spectral_trajectory`."""
        self.model.eval()
        with torch.no_grad():
            return self.model.spectral_trajectory(context, query_times)
