"""The search: KerasTuner tuners over the hypermodel, one per algorithm (tuners), asynchronous successive halving
(halving) and its trials that continue an earlier rung (continuing), kill-safe oracles (oracles), the median pruning
rule (pruning), progress lines (progress), and the one seam to KerasTuner's private API and undocumented state
(kerastuner)."""
