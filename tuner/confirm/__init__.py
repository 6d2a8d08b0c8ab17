"""Confirm runs: which top configurations are trained again under which seeds, how one run is trained and saved,
how the saved runs are read back and ranked by their mean, and the rule that keeps the baseline on top unless a
challenger clearly beats it (selection); how and where they run is execution's business."""
