"""Attribution graphs: the replacement model (transcoders, frozen attention and norms), nodes and edges, pruning,
scores, interventions, Neuronpedia's graph JSON, and information-flow routes (no transcoder needed)."""
