"""The captioner's registration with the command line: `train captioner`, `caption`, and
its parts of `export` and `evaluate`.

Imports from rnn_toolkit: cli.options, cli.loading, cli.registration, runs, and this
task's own modules (never another task's).
"""

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from rnn_toolkit.cli import loading
from rnn_toolkit.cli.options import (
    UsageError,
    absolute_data,
    add_option,
    dropout_rate,
    evaluation_config,
    int_in_range,
    non_negative_float,
    non_negative_int,
    option,
    positive_float,
    positive_int,
    print_line,
)
from rnn_toolkit.cli.registration import TaskCommands, Verb, VerbOption
from rnn_toolkit.layers.grid_positions import GRID_POSITION_CODES
from rnn_toolkit.runs import RunSetupError, config_from_settings
from rnn_toolkit.tasks.captioner.export import MAX_BEAM_WIDTH
from rnn_toolkit.tasks.captioner.model import ATTENTION_MODES
from rnn_toolkit.tasks.captioner.run import CaptionerRunConfig, train_captioner_run

NAME = "captioner"

# Built-in data names: a file of the same name in the working folder does not shadow them.
DATA_NAMES = ("tuxpaint", "emoji", "clipart", "emoji-scenes", "tfds")
ENCODERS = ("efficientnet_lite0", "small_cnn")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp")

beam_width_value = int_in_range(1, MAX_BEAM_WIDTH)

TRAIN_OPTIONS = (
    option("--max-images", type=non_negative_int, metavar="N",
           help="use a seeded sample of N images of the data (0: all; for quick trials)"),
    option("--max-caption-length", type=positive_int, metavar="N",
           help="training captions are cut to N words"),
    option("--image-encoder", choices=ENCODERS,
           help="the CNN: EfficientNet-Lite0 pretrained on ImageNet (frozen, its features "
           "computed once and cached, unless --fine-tune-encoder), or a small CNN trained "
           "jointly from scratch"),
    option("--image-size", type=int_in_range(16, 1024), metavar="PX",
           help="side of the square images the encoder reads"),
    option("--fine-tune-encoder", action=argparse.BooleanOptionalAction,
           help="train the pretrained encoder jointly with the decoder (the caption loss's "
           "gradient flows into the CNN; slower: every epoch runs the CNN)"),
    option("--attention", choices=ATTENTION_MODES,
           help="soft: at every word the decoder attends over the encoder's spatial grid (Show, "
           "Attend and Tell); none: the image summary only initialises the decoder (Show and Tell)"),
    option("--grid-positions", choices=GRID_POSITION_CODES,
           help="with soft attention: a code of each grid cell's row and column added to the "
           "attended features, so that captions can say where things are (sinusoidal: fixed; "
           "learned: trained from the sinusoidal start; none: what, hardly where). On the "
           "two-object scenes sinusoidal puts 97 %% of the objects on their sides (none: 47 %%); "
           "on single-object emoji it costs about 10 CIDEr-D"),
    option("--attention-penalty", type=non_negative_float, metavar="X",
           help="weight of the doubly stochastic attention penalty (every grid position gets "
           "about as much attention over the caption as the others)"),
    option("--label-smoothing", type=dropout_rate, metavar="X",
           help="share of each target word's probability spread over the vocabulary"),
    option("--augment", action=argparse.BooleanOptionalAction,
           help="random scale, shift, mirror and colour changes of training images (a frozen "
           "encoder: of the cached augmented views, see --feature-views)"),
    option("--feature-views", type=positive_int, metavar="N",
           help="with a frozen encoder: feature grids cached per training image, the image as "
           "is and N-1 augmented copies (computed once); each epoch draws one per image"),
    option("--beam-width", type=beam_width_value, metavar="N",
           help="beam search width of the held-out scores, and of the exported model's "
           "serving_default signature"),
    option("--cross-style", choices=("auto", "none"),
           help="auto: also score the OpenMoji drawings of the held-out emoji (the same concepts "
           "by other artists; a 31 MB PyPI wheel, downloaded once)"),
)

OPTION_HELP = {
    "epochs": "epochs to train; the run stops early when the validation captions' CIDEr-D "
    "stops improving (--patience)",
    "batch_size": "images per training step (one of their reference captions each)",
    "units": "hidden units per decoder layer",
    "embedding_dim": "word embedding size",
    "num_layers": "stacked decoder layers",
    "dropout": "dropout on the image features, the word embeddings, between recurrent layers "
    "and before the output layer",
    "data": "captioned images: 'tuxpaint' (Tux Paint's ~950 stamps with English captions; a "
    "161 MB Debian package, downloaded once), 'emoji' (~3,800 Noto colour emoji with their "
    "English names), 'clipart' (both), 'emoji-scenes' (6,000 images of two emoji side by side "
    "or stacked, captioned with both names and where each is), a folder of "
    "images with a same-named .txt caption "
    "file each, a Flickr8k-style token file (image.jpg#0<TAB>caption), a COCO captions_*.json, "
    "or 'tfds:NAME[:SPLIT]' (prepared locally)",
    "max_words": "vocabulary size cap (the most frequent training caption words)",
    "patience": "stop after N epochs without a better CIDEr-D of the greedy validation captions; "
    "the best epoch's weights are kept",
    "heldout_fraction": "share of the near-duplicate groups held out for the final BLEU and CIDEr-D",
    "validation_fraction": "share of the groups used for early stopping",
    "sample_every": "print greedy captions of 3 held-out images every N epochs during "
    "training (0: never)",
}


def _prepare_config(config):
    if config.attention_penalty and config.attention == "none":
        raise UsageError("--attention-penalty", "needs --attention soft")
    # run.json records a data path absolutely (evaluate finds it from anywhere).
    return dataclasses.replace(config, data=absolute_data(config.data, DATA_NAMES))


# --- export --------------------------------------------------------------------------------


def _recognizes(loaded):
    return loading.signature_takes(loaded, "caption", "image")


EXPORT_OPTIONS = (
    VerbOption(("--beam-width",), "the beam width of the serving_default signature (default: the "
               "run's --beam-width; the caption signature takes any width per request)",
               {"type": beam_width_value, "metavar": "N"}),
)


def _export(model, info, args):
    from rnn_toolkit.tasks.captioner.export import export_captioner

    config = config_from_settings(CaptionerRunConfig, info)
    return export_captioner(
        model, args.base_dir, name=args.name, version=args.version, overwrite=args.overwrite,
        beam_width=args.beam_width or config.beam_width,
    )


def saved_model_captioner(loaded, batch_size):
    """A function like `Captioner.caption` (on paths or bytes) that calls the 'caption'
    signature; greedy search is beam search of width 1."""
    return loading.beam_search_signature(
        loaded, "caption", input_key="image", output_key="caption", batch_size=batch_size,
        default_beam_width=3,
        read=lambda image: image if isinstance(image, bytes) else Path(image).read_bytes(),
    )


# --- caption -------------------------------------------------------------------------------


def _add_caption_arguments(parser):
    parser.add_argument(
        "model", metavar="MODEL",
        help="a captioner run folder (e.g. runs/captioner), or an exported SavedModel: a version "
        "folder (saved_models/captioner/1) or its model folder (the highest version)",
    )
    parser.add_argument(
        "images", nargs="+", metavar="IMAGE_OR_FOLDER",
        help="image files (PNG, JPEG, GIF, BMP), or folders: their image files, in name order",
    )
    options = parser.add_argument_group("decoding options")
    add_option(options, "--beam-width", type=beam_width_value, metavar="N", show_default=False,
               help="beam search width; 1 is greedy search (default: 3)")
    add_option(options, "--max-length", type=positive_int, metavar="N", show_default=False,
               help="the most words per caption (default: the model's)")
    add_option(options, "--sampler", choices=("greedy", "temperature", "top_k", "top_p"),
               show_default=False,
               help="pick each word instead of searching: the most likely one, or drawn from the "
               "(temperature-scaled, optionally top-k/top-p filtered) distribution, as the lecture "
               "samples from [START]; drawing needs a run folder")
    add_option(options, "--temperature", type=positive_float, metavar="T", show_default=False,
               help="with a drawing --sampler (default: 0.8)")
    add_option(options, "--seed", type=int, default=0, metavar="N", help="seed of the drawn words")
    add_option(options, "--json", action="store_true",
               help="one JSON object per image (image, caption, error)")
    add_option(options, "--batch-size", type=positive_int, default=16, metavar="N",
               help="images per call of the model")


def _image_paths(arguments):
    paths = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise UsageError("IMAGE_OR_FOLDER", f"the folder {argument!r} holds no PNG, JPEG, GIF or BMP file")
            paths += found
        elif path.is_file():
            paths.append(path)
        else:
            raise UsageError("IMAGE_OR_FOLDER", f"no such image file or folder: {argument!r}")
    return paths


def _caption(args):
    drawing = args.sampler in ("temperature", "top_k", "top_p")
    if args.sampler and args.beam_width is not None:
        raise UsageError("--beam-width", "applies to beam search; --sampler picks words one by one")
    if args.temperature is not None and not drawing:
        raise UsageError("--temperature", "applies only with --sampler temperature, top_k or top_p")
    paths = _image_paths(args.images)
    beam_width = 1 if args.sampler == "greedy" else args.beam_width or 3
    results = []
    if loading.holds_saved_model(loading.existing_folder(args.model, "MODEL")):
        if drawing:
            raise UsageError(
                "--sampler", f"{args.sampler} is not in the SavedModel's 'caption' signature (beam "
                "search only); caption with the run folder, or use greedy",
            )
        import tensorflow as tf

        path, loaded, _ = loading.load_saved_model(args.model, task=NAME, command="caption", option="MODEL")
        print(f"Captioning {len(paths):,} image(s) with the SavedModel {path} ...", file=sys.stderr, flush=True)
        signature = loaded.signatures["caption"]
        for start in range(0, len(paths), args.batch_size):
            batch = paths[start : start + args.batch_size]
            output = signature(
                image=tf.constant([p.read_bytes() for p in batch], tf.string),
                beam_width=tf.constant(beam_width, tf.int32),
                max_length=tf.constant(args.max_length or 0, tf.int32),
            )
            for image, caption, error in zip(batch, output["caption"].numpy(), output["error"].numpy()):
                results.append((image, caption.decode("utf-8", errors="replace"), error.decode("utf-8", errors="replace")))
    else:
        model, _ = loading.load_run(args.model, task=NAME, command="caption", option="MODEL")
        decoding = {"beam_width": beam_width, "max_length": args.max_length}
        if drawing:
            decoding = {"sampler": args.sampler, "seed": args.seed, "max_length": args.max_length,
                        "temperature": 0.8 if args.temperature is None else args.temperature}
        print(f"Captioning {len(paths):,} image(s) with {args.model} ...", file=sys.stderr, flush=True)
        # One image at a time: a file that is not an image gets its error, the rest a caption.
        for image in paths:
            try:
                results.append((image, model.caption(str(image), **decoding), ""))
            except ValueError as error:
                results.append((image, "", str(error)))
    for image, caption, error in results:
        if args.json:
            print_line(json.dumps({"image": str(image), "caption": caption, "error": error}, ensure_ascii=False))
        else:
            print_line(f"{image}\t{caption if not error else '(' + error + ')'}")


# --- evaluate ------------------------------------------------------------------------------

EVALUATE_OPTIONS = (
    VerbOption(("--data",), "'tuxpaint', 'emoji', 'clipart', 'emoji-scenes', a caption folder, a token file, a "
               "COCO json or 'tfds:NAME' (default: the run's data)", {"metavar": "NAME|PATH"}),
    VerbOption(("--beam-width",), "the beam search's width (default: the run's --beam-width, else 3)",
               {"type": beam_width_value, "metavar": "N"}),
    VerbOption(("--max-images",), "score only the first N images (default: all)",
               {"type": positive_int, "metavar": "N"}),
    VerbOption(("--split-seed",), "the split seed of the held-out share (default: the run's, else 0)",
               {"type": int, "metavar": "N"}),
)

EVALUATE_HELP = (
    "BLEU-1..4 (all references per image) and CIDEr-D of greedy and beam search. By\n"
    "  default the images are the run's held-out share, rebuilt from its settings, so the\n"
    "  result matches what train printed. A SavedModel without --run-dir needs --data: the\n"
    "  held-out share of that data's default split (--split-seed) is scored.\n\n"
    "  rnn-toolkit evaluate runs/captioner\n"
    "  rnn-toolkit evaluate saved_models/captioner --data emoji --beam-width 5"
)


def _evaluate(args, source):
    from rnn_toolkit.tasks.captioner.run import decoding_settings, format_results, load_data, score_captions, split_data

    config, split_name = evaluation_config(
        args, source.info, CaptionerRunConfig, DATA_NAMES, example="emoji", sample_field="max_images"
    )
    data = load_data(config)
    if split_name == "heldout":
        try:
            part = split_data(data, config).test
        except RunSetupError as error:
            raise UsageError("--data", str(error)) from None
        where = f"the held-out share of {config.data!r} (split seed {config.split_seed})"
    else:
        part, where = data, f"all of {config.data!r}"
    if args.max_images and args.max_images < len(part):
        part = part.subset(range(args.max_images))
        where += f"; the first {args.max_images:,}"
    batch_size = args.batch_size or 16
    if source.model is not None:
        scored = "the run's model"

        def caption(images, **settings):
            return source.model.caption(images, batch_size=batch_size, **settings)
    else:
        scored = f"the SavedModel {source.saved_path}"
        caption = saved_model_captioner(source.loaded, batch_size)
    decodings = decoding_settings(config)
    print_line(f"Captioning {len(part):,} images ({where}) with {scored}: {', '.join(decodings)} ...")
    results, _ = score_captions(caption, list(part.images), [list(c) for c in part.captions], decodings)
    print_line(format_results({"test": results}))


TASK = TaskCommands(
    name=NAME,
    summary="an image captioner (CNN encoder, soft attention, RNN decoder)",
    description="Trains an image captioner (Tux Paint stamps and Noto emoji by default): splits "
    "the images by\nnear-duplicate group, early-stops on the validation captions' CIDEr-D, prints greedy "
    "captions of 3 held-out\nimages after each epoch, then captions the held-out share with greedy "
    "and beam search and\nprints BLEU-1..4 and CIDEr-D against the nearest-neighbour retrieval "
    "baseline (and on the\nOpenMoji drawings of held-out emoji). Besides the shared run files it "
    "writes best.weights.h5\nand captions.tsv (each held-out image with its references and "
    "captions).",
    config=CaptionerRunConfig,
    train=train_captioner_run,
    train_options=TRAIN_OPTIONS,
    option_help=OPTION_HELP,
    prepare_config=_prepare_config,
    recognizes=_recognizes,
    signatures="'caption'",
    export=_export,
    export_options=EXPORT_OPTIONS,
    export_help="serving_default (image bytes -> caption, error), caption (image, beam_width,\n"
    "             max_length -> caption, error) and attention (image -> words, weights, error)",
    evaluate=_evaluate,
    evaluate_options=EVALUATE_OPTIONS,
    evaluate_help=EVALUATE_HELP,
    verbs=(
        Verb("caption", "caption images with a trained captioner",
             "Captions image files with a captioner run folder's model.keras or an exported\n"
             "SavedModel's 'caption' signature (TensorFlow alone), one line per image on stdout:\n"
             "PATH<TAB>caption (--json: one JSON object); status lines go to stderr. A file that\n"
             "is not a readable image gets its error instead of a caption.\n\n"
             "  rnn-toolkit caption runs/captioner photo.jpg\n"
             "  rnn-toolkit caption saved_models/captioner --beam-width 5 --json images/",
             _add_caption_arguments, _caption),
    ),
)
