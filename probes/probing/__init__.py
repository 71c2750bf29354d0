"""Linear probes on captured activations, their baselines, and edits along probe directions."""
