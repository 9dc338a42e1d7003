"""Layers shared by the methods; no method registers here.

One job per module:

* :mod:`methods.nn.embeddings` - the sinusoidal time embedding;
* :mod:`methods.nn.neighbours` - neighbour lists (dense all pairs with the
  minimum image, or vesin cell lists for large boxes);
* :mod:`methods.nn.graph` - the two graph layouts, :class:`~methods.nn.graph.Graph`
  (the EGNN layers' batched layout) and :class:`~methods.nn.graph.EdgeGraph`
  (an edge list with its geometry, for PaiNN and the attention layers), and
  the PyTorch Geometric ``Batch`` a graph method hands to a PyG network;
* :mod:`methods.nn.laplacian` - adjacency matrices and graph Laplacians;
* :mod:`methods.nn.egnn` - the EGNN layer (fast and reference forms) and stack;
* :mod:`methods.nn.painn` - the PaiNN layers and the gated equivariant readout;
* :mod:`methods.nn.ode` - ODE solving with a count of function evaluations,
  fixed-grid integration, reading the solution at query times;
* :mod:`methods.nn.model` - :class:`~methods.nn.model.GraphModel`, the base of
  the graph methods' models (inputs, graphs, chunking of query times).

Edge convention, everywhere: a message goes from the sender j to the receiver
i, and the relative vector of the edge is ``r_ij = x_i - x_j`` (receiver minus
sender, minimum image in a periodic box).  In PyTorch Geometric terms:
``edge_index[0]`` = j (source), ``edge_index[1]`` = i (target).
"""
