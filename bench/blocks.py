"""Which textbook block for the baseline: candidate small CNNs trained once on the train split, their test errors.

    python bench/blocks.py                                     # 5 sample splits, every variant: about 20 minutes
    python bench/blocks.py --variants one-conv two-convs-64 --splits 1 2

Each variant is the modern recipe around a different body: 3 blocks of batch-normalized 3x3 convolutions with
filters doubling per block, 2x2 max pooling after each, global average pooling, dropout 0.2, the existing
augmentation, Adam at 0.003 decaying along a cosine, 20 epochs on the train split alone (no early stopping, no
retrain, no mirror), one training seed. A plain Keras model, so it measures the body, not the tool's procedure.
It prints one JSON line per split and variant, then each variant's total test errors.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import prepared  # noqa: E402

# name -> (convolutions per block, their padding, dense layers of 128 on top, filters of the three blocks)
VARIANTS = {
    "one-conv-two-dense": (1, "valid", 2, (32, 64, 128)),   # the baseline before blocks of two
    "one-conv": (1, "valid", 0, (32, 64, 128)),
    "one-padded-conv": (1, "same", 0, (32, 64, 128)),
    "two-convs-128": (2, "same", 0, (32, 64, 128)),
    "two-convs-64": (2, "same", 0, (16, 32, 64)),            # the baseline
}


def build(variant, input_shape, classes, steps):
    import keras

    convs, padding, dense, widths = VARIANTS[variant]
    inputs = keras.Input(input_shape, dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.RandomFlip("horizontal")(x)
    x = keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest")(x)
    x = keras.layers.RandomZoom(0.1, fill_mode="nearest")(x)
    for filters in widths:
        for _ in range(convs):
            x = keras.layers.Conv2D(filters, 3, padding=padding, use_bias=False)(x)
            x = keras.layers.BatchNormalization(momentum=0.9)(x)
            x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    for _ in range(dense):
        x = keras.layers.Dense(128, activation="relu")(x)
    x = keras.layers.Dropout(0.2)(x)
    binary = classes == 2
    outputs = keras.layers.Dense(1 if binary else classes, activation="sigmoid" if binary else "softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(0.003, steps)),
                  "binary_crossentropy" if binary else "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="sample")
    parser.add_argument("--splits", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    import keras
    import numpy as np

    totals = {name: 0 for name in args.variants}
    for split in args.splits:
        data = np.load(Path(prepared(args.dataset, seed=split)) / "dataset.npz")
        classes = int(data["y_train"].max()) + 1
        steps = -(-len(data["y_train"]) // 32) * args.epochs
        for name in args.variants:
            keras.utils.set_random_seed(args.seed)
            model = build(name, data["x_train"].shape[1:], classes, steps)
            started = time.monotonic()
            history = model.fit(data["x_train"], data["y_train"], batch_size=32, epochs=args.epochs,
                                validation_data=(data["x_val"], data["y_val"]), verbose=0)
            accuracy = model.evaluate(data["x_test"], data["y_test"], verbose=0, return_dict=True)["accuracy"]
            errors = round((1 - accuracy) * len(data["y_test"]))
            totals[name] += errors
            print(json.dumps({"split": split, "variant": name, "test_errors": errors, "params": model.count_params(),
                              "min_val_loss": round(min(history.history["val_loss"]), 4),
                              "seconds": round(time.monotonic() - started, 1)}), flush=True)
            keras.backend.clear_session()
    for name, errors in totals.items():
        print(f"{name}: {errors} test errors over {len(args.splits)} split(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
