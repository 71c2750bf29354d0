"""Any site's activation on a prompt, as a table of numbers: the hook browser's analysis."""
