"""The winner: retrained on train + validation and published to RUN/best (retrain), its misclassified test images
(mistakes), its LiteRT exports (export) and runtime (litert), and predictions on new images (predict)."""
