"""What theory predicts for a run, and the quality of an output."""
