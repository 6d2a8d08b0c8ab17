"""The model: the output rule (head), the search space as a KerasTuner HyperModel (hypermodel), the tf.data feed
(pipeline), the one fit every trial, confirm run and retrain goes through (training), a trained model's size and speed
(footprint), and test-time mirror averaging (mirror)."""
