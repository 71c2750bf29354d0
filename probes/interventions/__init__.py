"""Edits to one component on one prompt (ablate a head, a neuron or a direction, or steer it) and what they do
to the next-token logits."""
