"""CNNHyperModel: the search space of small CNNs (conv layers x nodes x dense layers, and the tutorial's extras or the modern recipe)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import keras
import keras_tuner

from tuner.data.cache import PreparedDataset
from tuner.config import SearchSettings, smallest_side_for
from tuner.config.spaces import MODERN, MODERN_RECIPE, SPACE_NAMES, TUTORIAL, Dimension, FloatRange
from tuner.model.head import Head
from tuner.model.training import fit

# Keras' default Adam learning rate, used when the learning rate is not searched.
DEFAULT_LEARNING_RATE = 0.001


def augmentation(x: keras.KerasTensor) -> keras.KerasTensor:
    """Random horizontal flips, shifts and zoom of up to 10%: active in fit() only, so predictions are unchanged.

    Standard Keras preprocessing layers, so a model with them saves and loads in safe mode.
    """
    x = keras.layers.RandomFlip("horizontal", name="augment_flip")(x)
    x = keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", name="augment_shift")(x)
    return keras.layers.RandomZoom(0.1, fill_mode="nearest", name="augment_zoom")(x)


def conv_block(x: keras.KerasTensor, filters: int, index: int, batch_norm: bool = False,
               convs: int = 1) -> keras.KerasTensor:
    """The tutorial's block: a 3x3 convolution with ReLU, then 2x2 max pooling; with `convs` 2, two 3x3 convolutions
    padded to keep the size (the textbook's block). With `batch_norm`, each convolution has no bias and
    BatchNormalization comes before the ReLU (the bias would be cancelled by BN's mean anyway)."""
    padding = "valid" if convs == 1 else "same"
    for conv in range(convs):
        # The tutorial's block keeps its layer names (conv_0, bn_0, ...), so its models are named as they always were.
        name = f"{index}" if convs == 1 else f"{index}_{conv}"
        if batch_norm:
            x = keras.layers.Conv2D(filters, (3, 3), padding=padding, use_bias=False, name=f"conv_{name}")(x)
            # Momentum 0.9, not Keras' 0.99: a small image set has tens of steps per epoch, and at 0.99 the moving
            # statistics that validation uses still hold most of their initial values after a short first rung.
            x = keras.layers.BatchNormalization(momentum=0.9, name=f"bn_{name}")(x)
            x = keras.layers.ReLU(name=f"relu_{name}")(x)
        else:
            x = keras.layers.Conv2D(filters, (3, 3), padding=padding, activation="relu", name=f"conv_{name}")(x)
    return keras.layers.MaxPooling2D((2, 2), name=f"pool_{index}")(x)


def block_filters(nodes: int, conv_layers: int, filters: str) -> list[int]:
    """The filters of each conv block: `nodes` in every one ("constant", the tutorial's), or doubling per block up to
    `nodes` in the last ("double": nodes/4, nodes/2, nodes for three), so a model is never wider than --nodes."""
    if filters == "constant":
        return [nodes] * conv_layers
    return [max(1, nodes // 2 ** (conv_layers - 1 - index)) for index in range(conv_layers)]


def classifier_head(x: keras.KerasTensor, head: str) -> keras.KerasTensor:
    """From feature maps to one vector: the tutorial's Flatten, or global average pooling ("gap")."""
    if head == "gap":
        return keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.layers.Flatten(name="flatten")(x)


def learning_rate_schedule(learning_rate: float, decay_steps: int | None) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """Adam's learning rate: constant, or decaying along a cosine from `learning_rate` to 0 over `decay_steps`.

    A Keras schedule, so a saved model with it loads in safe mode.
    """
    if decay_steps is None:
        return learning_rate
    return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps, alpha=0.0, name="cosine_decay")


def declare(hp: keras_tuner.HyperParameters, name: str, dimension: Dimension) -> Any:
    """Declare one dimension of a space on `hp` (a Boolean, a Choice or a Float) and return this trial's value."""
    if isinstance(dimension, FloatRange):
        return hp.Float(name, dimension.low, dimension.high, sampling="log" if dimension.log else "linear",
                        default=dimension.default)
    if dimension == (False, True) and all(isinstance(value, bool) for value in dimension):
        return hp.Boolean(name)
    return hp.Choice(name, list(dimension))


@dataclass(frozen=True)
class Configuration:
    """One trial's values of the whole space; a dimension the space does not search has the tutorial's value."""

    conv_layers: int
    nodes: int
    dense_layers: int
    learning_rate: float = DEFAULT_LEARNING_RATE
    dropout: float = 0.0
    augment: bool = False
    filters: str = "constant"
    convs_per_block: int = 1
    batch_norm: bool = False
    head: str = "flatten"


class CNNHyperModel(keras_tuner.HyperModel):
    """The tutorial's CNN family (1-3 conv+pool blocks, a shared layer size, 0-2 hidden dense layers), and its recipe.

    Args:
        input_shape: (height, width, channels) of the uint8 images the model receives.
        num_classes: number of classes, at least 2.
        conv_layers: numbers of conv+pool blocks to try.
        nodes: layer sizes to try (filters of every conv layer, or of the last with doubling, and units of every
            dense layer).
        dense_layers: numbers of hidden dense layers to try.
        learning_rates: Adam learning rates to try (tutorial space); empty means the fixed Keras default.
        dropouts: dropout rates before the output layer to try (tutorial space); empty means no dropout.
        augment: "off" and/or "on" (training-time augmentation) to try (tutorial space); empty means off.
        space: "tutorial" (the core and the extras above) or "modern" (the core and config.spaces.MODERN_RECIPE).
        decay_steps: the optimizer steps of a full-length trial (steps per epoch x --epochs), over which the
            modern space's learning rate decays along a cosine; None keeps it constant.
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
        *,
        space: str = TUTORIAL,
        decay_steps: int | None = None,
    ) -> None:
        super().__init__(name="cnn")
        if len(input_shape) != 3 or min(input_shape) < 1:
            raise ValueError(f"input_shape must be (height, width, channels), got {tuple(input_shape)}.")
        Head(num_classes)  # refuses fewer than 2 classes
        for name, values in (("conv_layers", conv_layers), ("nodes", nodes), ("dense_layers", dense_layers)):
            if not values:
                raise ValueError(f"{name} needs at least one value to search over.")
        if space not in SPACE_NAMES:
            raise ValueError(f"space must be one of {', '.join(SPACE_NAMES)}, got {space!r}.")
        if space == MODERN and (learning_rates or dropouts or augment):
            raise ValueError("the modern space searches learning_rate, dropout and augment itself; give them no values.")
        if decay_steps is not None and decay_steps < 1:
            raise ValueError(f"decay_steps must be at least 1, got {decay_steps}.")
        self.input_shape = tuple(int(side) for side in input_shape)
        self.num_classes = int(num_classes)
        self.conv_layers = list(conv_layers)
        self.nodes = list(nodes)
        self.dense_layers = list(dense_layers)
        self.learning_rates = list(learning_rates)
        self.dropouts = list(dropouts)
        self.augment = list(augment)
        self.space = space
        self.decay_steps = decay_steps

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> Configuration:
        """Declare the whole space on `hp` and return this trial's values of it.

        The space has no conditional parts, so declaring it is enough for the tuner to know it
        without building a model (building the first configuration could fail on tiny images).
        The tutorial space declares its extras only when given, so its trial files are today's.
        """
        core = {"conv_layers": hp.Choice("conv_layers", self.conv_layers), "nodes": hp.Choice("nodes", self.nodes),
                "dense_layers": hp.Choice("dense_layers", self.dense_layers)}
        if self.space == MODERN:
            recipe = {name: declare(hp, name, dimension) for name, dimension in MODERN_RECIPE.items()}
            return Configuration(**core, **{**recipe, "augment": recipe["augment"] == "on"})
        learning_rate = hp.Choice("learning_rate", self.learning_rates) if self.learning_rates else DEFAULT_LEARNING_RATE
        dropout = hp.Choice("dropout", self.dropouts) if self.dropouts else 0.0
        augment = hp.Choice("augment", self.augment) == "on" if self.augment else False
        return Configuration(**core, learning_rate=learning_rate, dropout=dropout, augment=augment)

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        return self.build_configuration(hp, self.decay_steps)

    def build_configuration(self, hp: keras_tuner.HyperParameters, decay_steps: int | None) -> keras.Model:
        """The compiled model of `hp`'s configuration, its modern learning rate decaying over `decay_steps` steps."""
        # Every hyperparameter is declared before any early exit, so each trial (failed ones
        # included) carries them all and TensorBoard's HParams view has no holes.
        config = self.declare_hyperparameters(hp)

        height, width, _ = self.input_shape
        needed = smallest_side_for(config.conv_layers, config.convs_per_block)
        if min(height, width) < needed:
            raise keras_tuner.errors.FailedTrialError(
                f"{config.conv_layers} conv+pool blocks{' of two convolutions' if config.convs_per_block == 2 else ''} "
                f"need images of at least {needed}x{needed} px, "
                f"these are {height}x{width}; use fewer --conv-layers or a larger --img-size."
            )

        inputs = keras.Input(shape=self.input_shape, dtype="uint8", name="image")
        # Scaling lives inside the model so prediction can never forget it (the tutorial's bug).
        x = keras.layers.Rescaling(1.0 / 255, name="rescale")(inputs)
        if config.augment:
            x = augmentation(x)
        for index, filters in enumerate(block_filters(config.nodes, config.conv_layers, config.filters)):
            x = conv_block(x, filters, index, config.batch_norm, config.convs_per_block)
        x = classifier_head(x, config.head)
        for index in range(config.dense_layers):
            x = keras.layers.Dense(config.nodes, activation="relu", name=f"dense_{index}")(x)
        if config.dropout:
            x = keras.layers.Dropout(config.dropout, name="dropout")(x)
        head = Head(self.num_classes)
        outputs = keras.layers.Dense(head.units, activation=head.activation, name="output")(x)
        model = keras.Model(inputs, outputs, name="cnn")
        # The tutorial's learning rate stays constant, as it always was; the modern space's decays.
        schedule = learning_rate_schedule(config.learning_rate, decay_steps if self.space == MODERN else None)
        model.compile(optimizer=keras.optimizers.Adam(schedule), loss=head.loss, metrics=["accuracy"])
        return model

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, x: Any, validation_data: Any = None,
            epochs: int = 1, callbacks: list[keras.callbacks.Callback] | None = None,
            initial_epoch: int = 0) -> keras.callbacks.History:
        """Train a search trial's model with the tool's one trainer (training.fit): KerasTuner's hook for every trial.

        `callbacks` are the trial's (search.tuners.trial_plan) plus KerasTuner's own (HParams, checkpoint).
        """
        return fit(model, x, validation_data, epochs=epochs, callbacks=list(callbacks or []), initial_epoch=initial_epoch)


def steps_per_epoch(images: int, batch_size: int) -> int:
    """Optimizer steps in one epoch over `images` images (the last, short batch is a step too)."""
    return max(1, math.ceil(images / batch_size))


def build_hypermodel(settings: SearchSettings, dataset: PreparedDataset) -> CNNHyperModel:
    """The search space for this dataset, with the ranges from the settings.

    A modern trial's learning rate decays over the steps of the whole --epochs on the train split, the
    same for every trial, so a trial stopped or promoted part-way follows the full-length schedule.
    """
    decay_steps = steps_per_epoch(len(dataset.y_train), settings.batch_size) * settings.epochs
    return CNNHyperModel(
        dataset.input_shape, dataset.num_classes, conv_layers=settings.conv_layers, nodes=settings.nodes,
        dense_layers=settings.dense_layers, learning_rates=settings.learning_rates, dropouts=settings.dropouts,
        augment=settings.augment, space=settings.space, decay_steps=decay_steps,
    )


def build_model(hypermodel: CNNHyperModel, values: dict[str, Any], total_steps: int | None = None) -> keras.Model:
    """A compiled model of one configuration of the space: the search's trial rebuilt, e.g. to retrain it.

    Args:
        hypermodel: the space.
        values: the configuration's hyperparameter values.
        total_steps: the optimizer steps the model will be trained for, when not a trial's (the winner's
            retrain on train + validation); None keeps the hypermodel's (a trial's full length).
    """
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    hp.values.update(values)
    return hypermodel.build_configuration(hp, hypermodel.decay_steps if total_steps is None else total_steps)
