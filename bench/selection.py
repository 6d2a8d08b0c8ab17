"""How a run's confirmed configurations would fare as winners: each retrained as report.py retrains one, scored on test.

    python bench/selection.py bench-data/report/sample-seed1/modern ...   # runs made by bench/report.py (modern)

For each run (search and report already done), every configuration with confirm runs is retrained on
train + validation for its retrain epochs with the run's seed, as the winner is, and scored once on the
test split with mirror averaging; so are the average of their answers (an ensemble) and the trials' own
best-epoch checkpoints. It prints one JSON line per run: each configuration's best val_loss per seed (the
search's run first) and test errors, and what the ensembles would have made. This is what the selection
rule (tuner/confirm/selection.py) and its noise floor were measured with; it reads the test split, so it
is a benchmark, never part of a search.
"""

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def mirrored(model, images):
    """The mean of the model's answers for the images and their left-right mirror images."""
    return (model.predict(images, batch_size=256, verbose=0) + model.predict(images[:, :, ::-1], batch_size=256, verbose=0)) / 2


def measure(run_dir):
    import keras
    import numpy as np

    from tuner.confirm.runs import rank_confirmed, saved_confirmations
    from tuner.model.head import decide
    from tuner.model.hypermodel import build_hypermodel, build_model
    from tuner.rundir import load_run_dataset, open_run
    from tuner.trials.ranking import rank_trials
    from tuner.winner.retrain import load_checkpoint, retrain_configuration, retrain_epochs

    run, record = open_run(run_dir)
    ranked = rank_trials(run)[0]
    confirmations = {item.trial_id: item for item in saved_confirmations(run, record, ranked)}
    dataset, search = load_run_dataset(record), record.search
    hypermodel = build_hypermodel(search, dataset)
    errors = lambda answers: int((decide(answers)[0] != dataset.y_test).sum())  # noqa: E731
    result, retrained, checkpoints = {"run": str(run_dir), "configurations": []}, [], []
    scratch = Path(tempfile.mkdtemp())
    from tuner.confirm.selection import champion_trial

    # In the order report.py ranks them, so the first is its winner.
    for row in rank_confirmed(ranked, list(confirmations.values()), champion_trial(ranked, record)):
        if row.seeds is None:
            continue
        values, epochs = row.configuration(), retrain_epochs(row, search)
        model = retrain_configuration(dataset, search, values, epochs, scratch / row.trial)
        retrained.append(mirrored(model, dataset.x_test))
        checkpoint = load_checkpoint(run, row.trial, build_model(hypermodel, values), required=False)
        checkpoints.append(mirrored(checkpoint, dataset.x_test) if checkpoint is not None else None)
        result["configurations"].append({
            "trial": row.trial, "hyperparameters": values, "val_losses": confirmations[row.trial].val_losses,
            "retrain_epochs": epochs, "test_errors": errors(retrained[-1]),
            "checkpoint_test_errors": errors(checkpoints[-1]) if checkpoints[-1] is not None else None})
        keras.backend.clear_session()
    result["ensemble_test_errors"] = errors(np.mean(retrained, axis=0))
    if len(retrained) > 1 and all(item is not None for item in checkpoints):
        result["first_retrained_and_second_checkpoint_test_errors"] = errors((retrained[0] + checkpoints[1]) / 2)
    metadata = json.loads((run.best / "metadata.json").read_text())
    result["report_winner"] = {"trial": metadata["trial_id"],
                               "test_errors": round((1 - metadata["test"]["accuracy"]) * metadata["test"]["images"])}
    shutil.rmtree(scratch, ignore_errors=True)
    return result


def main(argv=None):
    for run_dir in (argv if argv is not None else sys.argv[1:]):
        print(json.dumps(measure(run_dir)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
