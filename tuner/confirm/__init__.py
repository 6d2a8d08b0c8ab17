"""Confirm runs: which top configurations are trained again under which seeds, how one run is trained and saved,
and how the saved runs are read back and ranked by their mean; how and where they run is execution's business."""
