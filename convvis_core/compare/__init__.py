"""Compare two models: what fine-tuning (or pruning, or another run) changed, layer by layer and
filter by filter. ``cka`` holds the similarity index (full-batch and the streamed minibatch
estimator), ``similarity`` runs both models over a dataset in one streamed pass, ``changes`` ranks
filters by how much their weights and activations changed."""
