"""The tutorial's hand-written loop over its 27 configurations, as a script the benchmarks run in a process of its own.

    python -c "$TUTORIAL_LOOP" PREPARED_DIR TENSORBOARD_DIR [--score-test] [--seed=N]

It prints one line per model and, last, a JSON line with the lowest val_loss (and, with
--score-test, the test accuracy of the model that reached it, after all 10 epochs). Every model is
seeded with N (default 1337) before it is built: another N is another training run of the same loop.
"""

TUTORIAL_LOOP = r'''
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np
import keras
from keras.layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D

data = np.load(os.path.join(sys.argv[1], "dataset.npz"), allow_pickle=False)
# The tutorial keeps float copies of the images, scaled by 255 by hand.
x_train, y_train = data["x_train"] / 255.0, data["y_train"]
x_val, y_val = data["x_val"] / 255.0, data["y_val"]
classes = int(max(y_train.max(), y_val.max())) + 1
# With --score-test the loop also scores each new best model on the test split: the model the tutorial
# would keep is the one with the lowest val_loss, as it stands after its 10 epochs.
score_test = "--score-test" in sys.argv[3:]
seed = int(next((arg.split("=", 1)[1] for arg in sys.argv[3:] if arg.startswith("--seed=")), 1337))
x_test, y_test = data["x_test"] / 255.0, data["y_test"]
best, pick = float("inf"), {}
for dense_layers in (0, 1, 2):
    for nodes in (32, 64, 128):
        for conv_layers in (1, 2, 3):
            name = f"{conv_layers}-conv-{nodes}-nodes-{dense_layers}-dense-{int(time.time())}"
            keras.utils.set_random_seed(seed)
            model = keras.Sequential([keras.Input(x_train.shape[1:])])
            model.add(Conv2D(nodes, (3, 3))); model.add(Activation("relu")); model.add(MaxPooling2D(pool_size=(2, 2)))
            for _ in range(conv_layers - 1):
                model.add(Conv2D(nodes, (3, 3))); model.add(Activation("relu")); model.add(MaxPooling2D(pool_size=(2, 2)))
            model.add(Flatten())
            for _ in range(dense_layers):
                model.add(Dense(nodes)); model.add(Activation("relu"))
            # The tutorial's binary head; with more classes, the usual softmax.
            if classes == 2:
                model.add(Dense(1)); model.add(Activation("sigmoid")); loss = "binary_crossentropy"
            else:
                model.add(Dense(classes)); model.add(Activation("softmax")); loss = "sparse_categorical_crossentropy"
            tensorboard = keras.callbacks.TensorBoard(log_dir=os.path.join(sys.argv[2], name))
            model.compile(loss=loss, optimizer="adam", metrics=["accuracy"])
            history = model.fit(x_train, y_train, batch_size=32, epochs=10, validation_data=(x_val, y_val),
                                callbacks=[tensorboard], verbose=0)
            val_loss = min(history.history["val_loss"])
            if val_loss < best:
                best, pick = val_loss, {"pick": name}
                if score_test:
                    pick["test_accuracy"] = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
            print(name, val_loss, flush=True)
print(json.dumps({"best_val_loss": best, **pick}))
'''
