"""MLP neurons: one neuron's activation on a prompt, its top-activating contexts, its direct effect on the logits."""
