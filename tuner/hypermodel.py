"""CNNHyperModel: the search space of small CNNs (conv layers x nodes x dense layers, optional extras), nothing else."""

from __future__ import annotations

from typing import Any, Sequence

import keras
import keras_tuner

from tuner.cache import PreparedDataset
from tuner.config import SearchSettings, smallest_side_for
from tuner.head import Head
from tuner.training import fit

# Keras' default Adam learning rate, used when the learning rate is not searched.
DEFAULT_LEARNING_RATE = 0.001


def augmentation(x: keras.KerasTensor) -> keras.KerasTensor:
    """Random horizontal flips, shifts and zoom of up to 10%: active in fit() only, so predictions are unchanged.

    Standard Keras preprocessing layers, so a model with them saves and loads in safe mode.
    """
    x = keras.layers.RandomFlip("horizontal", name="augment_flip")(x)
    x = keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", name="augment_shift")(x)
    return keras.layers.RandomZoom(0.1, fill_mode="nearest", name="augment_zoom")(x)


def conv_block(x: keras.KerasTensor, nodes: int, index: int) -> keras.KerasTensor:
    """The tutorial's block: a 3x3 convolution with ReLU, then 2x2 max pooling."""
    x = keras.layers.Conv2D(nodes, (3, 3), activation="relu", name=f"conv_{index}")(x)
    return keras.layers.MaxPooling2D((2, 2), name=f"pool_{index}")(x)


class CNNHyperModel(keras_tuner.HyperModel):
    """The tutorial's CNN family: 1-3 conv+pool blocks, a shared layer size, 0-2 hidden dense layers.

    Args:
        input_shape: (height, width, channels) of the uint8 images the model receives.
        num_classes: number of classes, at least 2.
        conv_layers: numbers of conv+pool blocks to try.
        nodes: layer sizes to try (filters of every conv layer and units of every dense layer).
        dense_layers: numbers of hidden dense layers to try.
        learning_rates: Adam learning rates to try; empty means the fixed Keras default.
        dropouts: dropout rates before the output layer to try; empty means no dropout.
        augment: "off" and/or "on" (training-time augmentation) to try; empty means off.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        conv_layers: Sequence[int] = (1, 2, 3),
        nodes: Sequence[int] = (32, 64, 128),
        dense_layers: Sequence[int] = (0, 1, 2),
        learning_rates: Sequence[float] = (),
        dropouts: Sequence[float] = (),
        augment: Sequence[str] = (),
    ) -> None:
        super().__init__(name="cnn")
        if len(input_shape) != 3 or min(input_shape) < 1:
            raise ValueError(f"input_shape must be (height, width, channels), got {tuple(input_shape)}.")
        Head(num_classes)  # refuses fewer than 2 classes
        for name, values in (("conv_layers", conv_layers), ("nodes", nodes), ("dense_layers", dense_layers)):
            if not values:
                raise ValueError(f"{name} needs at least one value to search over.")
        self.input_shape = tuple(int(side) for side in input_shape)
        self.num_classes = int(num_classes)
        self.conv_layers = list(conv_layers)
        self.nodes = list(nodes)
        self.dense_layers = list(dense_layers)
        self.learning_rates = list(learning_rates)
        self.dropouts = list(dropouts)
        self.augment = list(augment)

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> tuple[int, int, int, float, float, bool]:
        """Declare the whole space on `hp` and return this trial's values of it.

        The space has no conditional parts, so declaring it is enough for the tuner to know it
        without building a model (building the first configuration could fail on tiny images).
        """
        conv_layers = hp.Choice("conv_layers", self.conv_layers)
        nodes = hp.Choice("nodes", self.nodes)
        dense_layers = hp.Choice("dense_layers", self.dense_layers)
        learning_rate = hp.Choice("learning_rate", self.learning_rates) if self.learning_rates else DEFAULT_LEARNING_RATE
        dropout = hp.Choice("dropout", self.dropouts) if self.dropouts else 0.0
        augment = hp.Choice("augment", self.augment) == "on" if self.augment else False
        return conv_layers, nodes, dense_layers, learning_rate, dropout, augment

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        # Every hyperparameter is declared before any early exit, so each trial (failed ones
        # included) carries them all and TensorBoard's HParams view has no holes.
        conv_layers, nodes, dense_layers, learning_rate, dropout, augment = self.declare_hyperparameters(hp)

        height, width, _ = self.input_shape
        needed = smallest_side_for(conv_layers)
        if min(height, width) < needed:
            raise keras_tuner.errors.FailedTrialError(
                f"{conv_layers} conv+pool blocks need images of at least {needed}x{needed} px, "
                f"these are {height}x{width}; use fewer --conv-layers or a larger --img-size."
            )

        inputs = keras.Input(shape=self.input_shape, dtype="uint8", name="image")
        # Scaling lives inside the model so prediction can never forget it (the tutorial's bug).
        x = keras.layers.Rescaling(1.0 / 255, name="rescale")(inputs)
        if augment:
            x = augmentation(x)
        for index in range(conv_layers):
            x = conv_block(x, nodes, index)
        x = keras.layers.Flatten(name="flatten")(x)
        for index in range(dense_layers):
            x = keras.layers.Dense(nodes, activation="relu", name=f"dense_{index}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="dropout")(x)
        head = Head(self.num_classes)
        outputs = keras.layers.Dense(head.units, activation=head.activation, name="output")(x)
        model = keras.Model(inputs, outputs, name="cnn")
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=head.loss, metrics=["accuracy"])
        return model

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, x: Any, validation_data: Any = None,
            epochs: int = 1, callbacks: list[keras.callbacks.Callback] | None = None,
            initial_epoch: int = 0) -> keras.callbacks.History:
        """Train a search trial's model with the tool's one trainer (training.fit): KerasTuner's hook for every trial.

        `callbacks` are the trial's (search.trial_plan) plus KerasTuner's own (HParams, checkpoint).
        """
        return fit(model, x, validation_data, epochs=epochs, callbacks=list(callbacks or []), initial_epoch=initial_epoch)


def build_hypermodel(settings: SearchSettings, dataset: PreparedDataset) -> CNNHyperModel:
    """The search space for this dataset, with the ranges from the settings."""
    return CNNHyperModel(
        dataset.input_shape, dataset.num_classes, conv_layers=settings.conv_layers, nodes=settings.nodes,
        dense_layers=settings.dense_layers, learning_rates=settings.learning_rates, dropouts=settings.dropouts, augment=settings.augment,
    )


def build_model(hypermodel: CNNHyperModel, values: dict[str, Any]) -> keras.Model:
    """A compiled model of one configuration of the space: the search's trial rebuilt, e.g. to retrain it."""
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    hp.values.update(values)
    return hypermodel.build(hp)
