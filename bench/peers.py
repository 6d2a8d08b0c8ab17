"""Peer tools on one split for about the same time: AutoKeras, KerasTuner's Hyperband and Bayesian tuners, Optuna.

    python bench/peers.py PEER PREPARED_DIR WORK_DIR --seconds S [--seed N]
    python bench/peers.py kt-hyperband bench-data/sample-seed1 /tmp/peers --seconds 600

Each peer searches one prepared split (data_prep.py's dataset.npz) the way its own users write it, with
10 epochs per trial, and its final model is scored once on the test split. The last stdout line is JSON:
{"test_accuracy", "images" (test images), "pick" (the chosen model), "trials" (trials completed)}; one
line per trial goes to stderr. What a peer writes goes under WORK_DIR/PEER (overwritten); Optuna's
study lives in memory.

Peers:
  autokeras     AutoKeras 3.0.0 AutoModel: ImageInput -> ImageBlock(block_type="vanilla") ->
                ClassificationHead, its default greedy tuner, fit(x_train, y_train, epochs=10,
                validation_data=(x_val, y_val)). Scored with AutoModel.evaluate, AutoKeras' own way.
  kt-hyperband  keras_tuner.Hyperband(max_epochs=10, factor=3) over this tool's modern HyperModel
                (tuner.model.hypermodel.build_hypermodel with SearchSettings' defaults), objective val_loss.
  kt-bayesian   keras_tuner.BayesianOptimization over the same HyperModel, its own defaults otherwise: its
                Gaussian process starts after 3 random trials per dimension (30 for the 10 of this space),
                so in a budget of minutes every trial is random.
  optuna        Optuna 5.0.0: TPESampler(seed) and HyperbandPruner(1..10 epochs, factor 3) over the same
                space, each dimension declared from the HyperModel's own hyperparameters (so a change to
                the space is picked up), the model built with tuner.model.hypermodel.build_model and
                trained with the tool's one fit (tuner.model.training.fit), val_loss reported after every
                epoch, a trial's value its lowest val_loss (KerasTuner's objective too).

The KerasTuner peers search `search_pipelines` (the tool's tf.data batches of uint8 images; the model
rescales them itself): CNNHyperModel.fit takes a batched dataset, not x and y arrays. They use no
EarlyStopping (10 epochs is short; Hyperband and Optuna's pruner already stop weak trials early), and
KerasTuner's own trial printout is turned off on the oracle (search(verbose=0) would reach
CNNHyperModel.fit, which takes no `verbose`).

What is scored: for the three peers over this tool's space, the best trial's own trained model, with
the weights of its best epoch: KerasTuner's get_best_models(1)[0] (its checkpoint), and for Optuna the
best completed trial's model, its best epoch's weights kept in memory. No peer retrains its winner.
AutoKeras, given validation_data and epochs and no EarlyStopping, trains the best configuration again
after the search, on the training split alone (not train + validation) for the same epochs, and saves
that model as best_model.keras; but its evaluate/predict/export_model load get_best_models()[0], the
best trial's own checkpoint. So that refit costs time (counted here) and is not what is scored (in the
smoke run on sample-seed1 the refit model scored 0.889 on test, the evaluated one 0.923).

How time is matched: the clock starts when this process starts (imports included), and a peer starts
another trial only while the seconds used plus the mean seconds of its trials so far fit in S (for
AutoKeras, plus one more mean trial for its refit). KerasTuner and AutoKeras have no time limit: the
tuner's on_trial_end lowers the oracle's max_trials to the trials made so far, which ends the search
the normal way. Optuna gets the same rule as a study callback (study.stop()), and the rest of S as
optimize(timeout=...). A trial is never cut short, so a run can overrun S by what the mean misjudged
of its last trial; Hyperband can also end before S, when its one bracket iteration is done. The
benchmark times the whole process.

AutoKeras block types, on 28x28 grayscale on a 2-core CPU without network: ImageBlock's default tunes
block_type over resnet, xception, vanilla and efficientnet. "resnet", "xception" and "efficientnet"
wrap keras.applications (ResNet50/101/152 v1 and v2, Xception, EfficientNet B0-B7): they upsample the
image (to 32 px, 71 for Xception, 224 when their "imagenet_size" hyperparameter is picked), copy the
channel to three, and tune "pretrained", whose True downloads ImageNet weights and here fails ("URL
fetch failure"). The greedy tuner can pick pretrained=True at random even for the first trial (seen
with block_type="resnet"); three such failures in a row end the search with an error. With
pretrained=False they train, but far too slowly: a 1-epoch trial on 256 images plus its 1-epoch refit
took 85-88 s for each of resnet (ResNet50), xception and efficientnet (B0), where a whole vanilla
trial (10 epochs on 1,388 images) took 18 s. Only "vanilla" (AutoKeras' plain conv block, whose
normalization, augmentation and layers it still tunes) is a search a CPU user can run here, hence
ImageBlock(block_type="vanilla").
AutoKeras 3.0.0 passes the class count to a Dense layer's `units` as a NumPy integer, which Keras 3.15
refuses ("expected a positive integer. Received: units=1"); `int_dense_units` casts it to int.
"""

from __future__ import annotations

import time

STARTED = time.monotonic()  # the run's clock: the benchmark times the whole process

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EPOCHS = 10  # per trial, as in the tutorial and the tool's defaults
DEFAULT_SEED = 1337  # the tool's default seed (SearchSettings)


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Budget:
    """S seconds from the process start; whether another trial fits, judged from the trials so far."""

    def __init__(self, seconds: float, reserve_trials: int = 0) -> None:
        self.seconds = seconds
        self.reserve_trials = reserve_trials  # mean trials kept for work after the search (AutoKeras' refit)
        self.trial_seconds: list[float] = []

    def elapsed(self) -> float:
        return time.monotonic() - STARTED

    def remaining(self) -> float:
        return max(0.0, self.seconds - self.elapsed())

    def add_trial(self, seconds: float) -> None:
        self.trial_seconds.append(seconds)

    def another_fits(self) -> bool:
        if not self.trial_seconds:
            return True
        mean = statistics.mean(self.trial_seconds)
        return self.elapsed() + mean * (1 + self.reserve_trials) <= self.seconds


def short(values: dict) -> str:
    """Hyperparameter values as one line of name=value, KerasTuner's bookkeeping (tuner/...) left out.

    A scoped name (AutoKeras': image_block_1/conv_block_1/dropout) keeps its last part, and its scope's
    last part too where that alone would repeat (conv_block_1/dropout, classification_head_1/dropout).
    """
    names = [name for name in values if not name.startswith("tuner/")]
    last = [name.rsplit("/", 1)[-1] for name in names]
    parts = []
    for name, tail in zip(names, last):
        shown = "/".join(name.split("/")[-2:]) if last.count(tail) > 1 else tail
        value = values[name]
        parts.append(f"{shown}={value:.3g}" if isinstance(value, float) else f"{shown}={value}")
    return " ".join(parts)


def time_limited(tuner_class: type, label: str) -> type:
    """A subclass of a KerasTuner tuner that ends its search when the budget has no room for another trial.

    The search loop stops when the oracle says so; lowering its max_trials to the trials made so far does.
    """

    class TimeLimited(tuner_class):
        def __init__(self, *args, budget: Budget, **kwargs):
            self.budget = budget
            self.trial_started = time.monotonic()
            super().__init__(*args, **kwargs)

        def on_trial_begin(self, trial):
            self.trial_started = time.monotonic()
            super().on_trial_begin(trial)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            seconds = time.monotonic() - self.trial_started
            self.budget.add_trial(seconds)
            ended = self.oracle.get_trial(trial.trial_id)
            score = "failed" if ended.score is None else f"val_loss {ended.score:.4f}"
            say(f"{label} trial {trial.trial_id}: {score} in {seconds:.0f} s ({self.budget.elapsed():.0f} of "
                f"{self.budget.seconds:.0f} s used)")
            if not self.budget.another_fits():
                self.oracle.max_trials = len(self.oracle.trials)

    TimeLimited.__name__ = f"TimeLimited{tuner_class.__name__}"
    return TimeLimited


def completed_trials(oracle) -> int:
    return sum(trial.status == "COMPLETED" for trial in oracle.trials.values())


# AutoKeras ------------------------------------------------------------------------------------------------


def int_dense_units() -> None:
    """Let keras.layers.Dense take a NumPy integer as `units` (AutoKeras 3.0.0 passes the class count as one)."""
    import keras
    import numpy as np

    original = keras.layers.Dense.__init__

    def init(self, units, *args, **kwargs):
        original(self, int(units) if isinstance(units, np.integer) else units, *args, **kwargs)

    keras.layers.Dense.__init__ = init


def run_autokeras(dataset, work: Path, budget: Budget, seed: int) -> dict:
    import autokeras as ak

    int_dense_units()
    budget.reserve_trials = 1  # AutoKeras refits the best configuration after the search
    image = ak.ImageInput()
    head = ak.ClassificationHead()(ak.ImageBlock(block_type="vanilla")(image))
    model = ak.AutoModel(inputs=image, outputs=head, directory=str(work), overwrite=True, seed=seed,
                         max_trials=10_000, tuner=time_limited(ak.tuners.Greedy, "autokeras"), budget=budget)
    model.fit(dataset.x_train, dataset.y_train, validation_data=(dataset.x_val, dataset.y_val), epochs=EPOCHS,
              verbose=0)
    say(f"autokeras search and refit done ({budget.elapsed():.0f} s used)")
    best = model.tuner.oracle.get_best_trials(1)[0]
    accuracy = model.evaluate(dataset.x_test, dataset.y_test, verbose=0)[1]
    return {"test_accuracy": float(accuracy), "trials": completed_trials(model.tuner.oracle),
            "pick": f"trial {best.trial_id}: {short(best.hyperparameters.values)}"}


# KerasTuner over this tool's HyperModel ---------------------------------------------------------------------


def tool_space(dataset, seed: int):
    """This tool's modern HyperModel for the split, as search.py builds it with its default settings."""
    from tuner.config import SearchSettings
    from tuner.model.hypermodel import build_hypermodel

    settings = SearchSettings(seed=seed, epochs=EPOCHS)
    return settings, build_hypermodel(settings, dataset)


def test_accuracy(model, dataset, batch_size: int) -> float:
    from tuner.model.pipeline import evaluation_pipeline

    test = evaluation_pipeline(dataset.x_test, dataset.y_test, dataset.num_classes, batch_size)
    return float(model.evaluate(test, verbose=0, return_dict=True)["accuracy"])


def run_kerastuner(tuner_class: type, label: str, dataset, work: Path, budget: Budget, seed: int, **options) -> dict:
    from tuner.model.pipeline import search_pipelines

    settings, hypermodel = tool_space(dataset, seed)
    tuner = time_limited(tuner_class, label)(hypermodel, objective="val_loss", directory=str(work),
                                              project_name=label, overwrite=True, seed=seed, budget=budget, **options)
    tuner.oracle.verbose = 0  # KerasTuner's own trial printout
    train, validation = search_pipelines(dataset, settings.batch_size, seed)
    tuner.search(train, validation_data=validation, epochs=EPOCHS)
    best = tuner.oracle.get_best_trials(1)[0]
    model = tuner.get_best_models(1)[0]
    return {"test_accuracy": test_accuracy(model, dataset, settings.batch_size),
            "trials": completed_trials(tuner.oracle), "pick": f"trial {best.trial_id}: {short(best.hyperparameters.values)}"}


def run_kt_hyperband(dataset, work: Path, budget: Budget, seed: int) -> dict:
    import keras_tuner

    return run_kerastuner(keras_tuner.Hyperband, "kt-hyperband", dataset, work, budget, seed,
                          max_epochs=EPOCHS, factor=3)


def run_kt_bayesian(dataset, work: Path, budget: Budget, seed: int) -> dict:
    import keras_tuner

    # More trials than any budget runs: the clock ends the search.
    return run_kerastuner(keras_tuner.BayesianOptimization, "kt-bayesian", dataset, work, budget, seed,
                          max_trials=10_000)


# Optuna ---------------------------------------------------------------------------------------------------


def suggest(trial, hp) -> dict:
    """One value per dimension of a KerasTuner HyperParameters space, suggested by an Optuna trial."""
    values = {}
    for dimension in hp.space:
        name, kind = dimension.name, type(dimension).__name__
        if kind == "Boolean":
            values[name] = trial.suggest_categorical(name, [False, True])
        elif kind == "Choice":
            values[name] = trial.suggest_categorical(name, list(dimension.values))
        elif kind in ("Float", "Int"):
            suggest_number = trial.suggest_float if kind == "Float" else trial.suggest_int
            values[name] = suggest_number(name, dimension.min_value, dimension.max_value,
                                          log=dimension.sampling == "log")
        else:
            raise TypeError(f"no Optuna counterpart for the hyperparameter {name!r} ({kind})")
    return values


class BestTrial:
    """The best completed trial so far: its val_loss, values and model (at its best epoch's weights)."""

    def __init__(self) -> None:
        self.val_loss = float("inf")
        self.trial_number = None
        self.values: dict = {}
        self.model = None


def epoch_reporter(trial, pruned_error: type):
    """A Keras callback: report each epoch's val_loss to the trial, keep the best epoch's weights, prune when told."""
    import keras

    class Reporter(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best_val_loss = float("inf")
            self.best_weights = None

        def on_epoch_end(self, epoch, logs=None):
            val_loss = float((logs or {})["val_loss"])
            if val_loss < self.best_val_loss:
                self.best_val_loss, self.best_weights = val_loss, self.model.get_weights()
            trial.report(val_loss, epoch + 1)  # steps are epochs trained, the pruner's resource
            if trial.should_prune():
                raise pruned_error(f"pruned at epoch {epoch + 1}")

    return Reporter()


def run_optuna(dataset, work: Path, budget: Budget, seed: int) -> dict:
    import keras_tuner
    import optuna
    from tuner.model.hypermodel import build_model
    from tuner.model.pipeline import search_pipelines
    from tuner.model.training import fit

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings, hypermodel = tool_space(dataset, seed)
    space = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(space)
    train, validation = search_pipelines(dataset, settings.batch_size, seed)
    best = BestTrial()

    def objective(trial):
        values = suggest(trial, space)
        model = build_model(hypermodel, values)
        reporter = epoch_reporter(trial, optuna.TrialPruned)
        fit(model, train, validation, epochs=EPOCHS, callbacks=[reporter])
        if reporter.best_val_loss < best.val_loss:
            model.set_weights(reporter.best_weights)
            best.val_loss, best.trial_number = reporter.best_val_loss, trial.number
            best.values, best.model = values, model
        return reporter.best_val_loss

    def after_trial(study, trial):
        budget.add_trial(trial.duration.total_seconds())
        outcome = f"val_loss {trial.value:.4f}" if trial.value is not None else trial.state.name.lower()
        if trial.state == optuna.trial.TrialState.PRUNED:
            outcome = f"pruned after {len(trial.intermediate_values)} epochs"
        say(f"optuna trial {trial.number}: {outcome} in {trial.duration.total_seconds():.0f} s "
            f"({budget.elapsed():.0f} of {budget.seconds:.0f} s used)")
        if not budget.another_fits():
            study.stop()

    pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=EPOCHS, reduction_factor=3)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner)
    study.optimize(objective, timeout=budget.remaining(), callbacks=[after_trial])
    if best.model is None:
        raise RuntimeError("optuna completed no trial within the time; give more --seconds.")
    completed = sum(trial.state == optuna.trial.TrialState.COMPLETE for trial in study.trials)
    return {"test_accuracy": test_accuracy(best.model, dataset, settings.batch_size),
            "pick": f"trial {best.trial_number}: {short(best.values)}", "trials": completed}


PEERS = {"autokeras": run_autokeras, "kt-hyperband": run_kt_hyperband, "kt-bayesian": run_kt_bayesian,
         "optuna": run_optuna}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peer", choices=PEERS)
    parser.add_argument("prepared_dir", help="a prepared split (data_prep.py's folder with dataset.npz)")
    parser.add_argument("work_dir", help="where the peer writes; WORK_DIR/PEER is overwritten")
    parser.add_argument("--seconds", type=float, required=True, help="wall time for the whole run, search and refit")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error(f"--seconds must be above 0, got {args.seconds}")

    from tuner.cli import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras

    from tuner.data.cache import load_prepared

    keras.utils.set_random_seed(args.seed)
    dataset = load_prepared(args.prepared_dir)
    work = Path(args.work_dir).resolve() / args.peer
    work.mkdir(parents=True, exist_ok=True)
    budget = Budget(args.seconds)
    result = PEERS[args.peer](dataset, work, budget, args.seed)
    say(f"{args.peer}: {result['trials']} trials, test accuracy {result['test_accuracy']:.4f}, "
        f"{budget.elapsed():.0f} s of {args.seconds:.0f}")
    print(json.dumps({"test_accuracy": result["test_accuracy"], "images": int(len(dataset.y_test)),
                      "pick": result["pick"], "trials": result["trials"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
