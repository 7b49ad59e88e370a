"""The translator's registration with the command line: `train translator`, `translate`,
and its parts of `export` and `evaluate`.

Imports from rnn_toolkit: cli.options, cli.loading, cli.registration, runs, and this
task's own modules (never another task's).
"""

import argparse
import dataclasses
import sys

from rnn_toolkit.cli import loading
from rnn_toolkit.cli.options import (
    SAMPLERS,
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
    read_lines,
    top_p_value,
)
from rnn_toolkit.cli.registration import TaskCommands, Verb, VerbOption
from rnn_toolkit.runs import RunSetupError, config_from_settings
from rnn_toolkit.tasks.translator.export import MAX_BEAM_WIDTH
from rnn_toolkit.layers.attention_decoder import ATTENTION_TYPES
from rnn_toolkit.tasks.translator.model import BRIDGES
from rnn_toolkit.tasks.translator.run import TranslatorRunConfig, train_translator_run

NAME = "translator"

# Built-in data names: a file of the same name in the working folder does not shadow them.
DATA_NAMES = ("bible", "gcc", "tfds", "auto", "none")

# The exported signature clamps wider beams to MAX_BEAM_WIDTH: refuse them up front.
beam_width_value = int_in_range(1, MAX_BEAM_WIDTH)

TRAIN_OPTIONS = (
    option("--max-pairs", type=non_negative_int, metavar="N",
           help="use a seeded sample of N pairs of the data (0: all; for quick trials)"),
    option("--max-source-length", type=positive_int, metavar="N",
           help="training and validation pairs with more source words are dropped (held-out "
           "pairs are all kept and scored)"),
    option("--max-target-length", type=positive_int, metavar="N",
           help="... and those with more target words"),
    option("--lowercase", action=argparse.BooleanOptionalAction,
           help="lower-case both languages: smaller vocabularies, lower-case translations (BLEU "
           "and chrF are case-insensitive either way)"),
    option("--encoder-layers", type=positive_int, metavar="N", help="stacked encoder layers"),
    option("--decoder-layers", type=positive_int, metavar="N", help="stacked decoder layers"),
    option("--attention", choices=ATTENTION_TYPES,
           help="how the decoder looks at the encoder's outputs at each target word: not at all "
           "(the encoder's final state is the only path: the summary-vector bottleneck), with "
           "additive (Bahdanau) or multiplicative (Luong) scores"),
    option("--bridge", choices=BRIDGES,
           help="the decoder's initial state: a learned projection of the encoder's final state, "
           "or zeros (the source then reaches the decoder through attention only)"),
    option("--label-smoothing", type=dropout_rate, metavar="X",
           help="share of each target word's probability spread over the vocabulary"),
    option("--beam-width", type=beam_width_value, metavar="N",
           help="beam search width of the held-out scores, and of the exported model's "
           "serving_default signature"),
    option("--length-penalty", type=non_negative_float, metavar="X",
           help="GNMT length-penalty exponent of the beam search (0: none; larger values favour "
           "longer translations)"),
    option("--ood-data", metavar="auto|NAME|PATH|none",
           help="out-of-domain sentence pairs (any --data source of the same language pair) also "
           "scored after training; 'auto': gcc's messages when translating English to Spanish or "
           "French, else none; 'none' skips them"),
    option("--ood-sentences", type=positive_int, metavar="N",
           help="pairs of --ood-data scored (a seeded sample)"),
)

OPTION_HELP = {
    "epochs": "epochs to train; the run stops early when validation loss stops improving "
    "(--patience)",
    "batch_size": "sentence pairs per training step",
    "units": "hidden units per recurrent layer (and encoder direction)",
    "embedding_dim": "source and target word embedding size",
    "dropout": "dropout on the word embeddings, between recurrent layers and before the output "
    "layer",
    "bidirectional": "read each source sentence in both directions in the encoder "
    "(--no-bidirectional: forwards only)",
    "data": "sentence pairs: 'bible' (31,084 English-Spanish verse pairs, King James and "
    "Reina-Valera 1909, downloaded once from Debian), 'bible:es-en' (the other way), 'gcc' (8,653 "
    "GCC compiler messages, English to Spanish; 'gcc:LANG' another language), 'tfds:NAME[:SPLIT]' "
    "(e.g. tfds:ted_hrlr_translate/pt_to_en), or a file of source<TAB>target lines",
    "max_words": "vocabulary size cap per language (the most frequent training words)",
    "bucketing": "batch pairs in random order instead of with pairs of similar length",
    "patience": "stop after N epochs without a better validation loss; the best epoch's weights "
    "are kept",
    "heldout_fraction": "share of all pairs held out for the final BLEU and chrF",
    "sample_every": "print greedy translations of 3 held-out sentences every N epochs during "
    "training (0: never)",
}


def _prepare_config(config):
    if config.bridge == "zeros" and config.attention == "none":
        raise UsageError(
            "--bridge", "'zeros' with --attention none leaves the decoder no way to see the "
            "source; use --bridge dense or an attention",
        )
    # run.json records a data file by its absolute path (evaluate finds it from anywhere).
    return dataclasses.replace(
        config, data=absolute_data(config.data, DATA_NAMES),
        ood_data=absolute_data(config.ood_data, DATA_NAMES),
    )


# --- export --------------------------------------------------------------------------------


def _recognizes(loaded):
    return loading.signature_takes(loaded, "translate", "beam_width")


EXPORT_OPTIONS = (
    VerbOption(("--beam-width",), "the beam width of the serving_default signature (default: the "
               "run's --beam-width; the translate signature takes any width per request)",
               {"type": beam_width_value, "metavar": "N"}),
)


def _export(model, info, args):
    from rnn_toolkit.tasks.translator.export import export_translator

    config = config_from_settings(TranslatorRunConfig, info)
    return export_translator(
        model, args.base_dir, name=args.name, version=args.version, overwrite=args.overwrite,
        beam_width=args.beam_width or config.beam_width, length_penalty=config.length_penalty,
    )


def saved_model_translator(loaded, batch_size):
    """A function like `Translator.translate` that calls the 'translate' signature.

    Greedy search is beam search of width 1; the length penalty is the export's.
    """
    return loading.beam_search_signature(
        loaded, "translate", input_key="text", output_key="translation", batch_size=batch_size,
        default_beam_width=4,
    )


# --- translate -----------------------------------------------------------------------------


def _add_translate_arguments(parser):
    parser.add_argument(
        "model", metavar="MODEL",
        help="a translator run folder (e.g. runs/translator), or an exported SavedModel: a "
        "version folder (saved_models/translator/1) or its model folder (saved_models/"
        "translator: the highest version)",
    )
    parser.add_argument(
        "sentences", nargs="*", metavar="SENTENCE",
        help="sentences to translate; '-' or none: one per line from stdin",
    )
    options = parser.add_argument_group("decoding options")
    add_option(options, "--beam-width", type=beam_width_value, metavar="N", show_default=False,
               help="beam search width; 1 is greedy search (default: 4)")
    add_option(options, "--max-length", type=positive_int, metavar="N", show_default=False,
               help="the most words per translation (default: twice the source's words plus 10)")
    add_option(options, "--sampler", choices=SAMPLERS, show_default=False,
               help="decode by picking each word instead of by beam search: the most likely one "
               "(greedy, the same as --beam-width 1), or drawn from the (temperature-scaled, "
               "optionally top-k or top-p filtered) distribution; drawing needs a run folder, the "
               "SavedModel's signature decodes by beam search")
    add_option(options, "--temperature", type=positive_float, metavar="T", show_default=False,
               help="with --sampler temperature, top_k or top_p: below 1 safer, above 1 more "
               "surprising translations (default: 0.8)")
    add_option(options, "--top-k", type=positive_int, metavar="K", show_default=False,
               help="with --sampler top_k: draw from the K most likely words (default: 10)")
    add_option(options, "--top-p", type=top_p_value, metavar="P", show_default=False,
               help="with --sampler top_p: draw from the most likely words whose probabilities "
               "add up to P (default: 0.9)")
    add_option(options, "--seed", type=int, default=0, metavar="N",
               help="seed of the drawn words (the same seed gives the same translations)")
    add_option(options, "--batch-size", type=positive_int, default=64, metavar="N",
               help="sentences per call of the model")


def _translate(args):
    from rnn_toolkit.tasks.translator.run import describe_model

    sampling = args.sampler in ("temperature", "top_k", "top_p")
    if args.sampler and args.beam_width is not None:
        raise UsageError("--beam-width", "applies to beam search; --sampler decodes by sampling")
    for option_name, value, samplers in (
        ("--temperature", args.temperature, ("temperature", "top_k", "top_p")),
        ("--top-k", args.top_k, ("top_k",)),
        ("--top-p", args.top_p, ("top_p",)),
    ):
        if value is not None and args.sampler not in samplers:
            raise UsageError(option_name, f"applies only with --sampler {' or '.join(samplers)}")
    beam_width = 1 if args.sampler == "greedy" else args.beam_width or 4
    sentences = read_lines(args.sentences, noun="sentence", argument="SENTENCE")

    if loading.holds_saved_model(loading.existing_folder(args.model, "MODEL")):
        if sampling:
            raise UsageError(
                "--sampler", f"{args.sampler} is not in the SavedModel's 'translate' signature "
                "(beam search only); translate with the run folder, or use greedy",
            )
        path, loaded, _ = loading.load_saved_model(args.model, task=NAME, command="translate", option="MODEL")
        translate = saved_model_translator(loaded, args.batch_size)
        how = "greedy search" if beam_width == 1 else f"beam search of width {beam_width}"
        described = f"the SavedModel {path}, {how}"
        decoding = {"beam_width": beam_width, "max_length": args.max_length}
    else:
        model, info = loading.load_run(args.model, task=NAME, command="translate", option="MODEL")
        config = config_from_settings(TranslatorRunConfig, info)
        if sampling:
            decoding = {
                "sampler": args.sampler,
                "seed": args.seed,
                "temperature": 0.8 if args.temperature is None else args.temperature,
            }
            if args.sampler == "top_k":
                decoding["top_k"] = 10 if args.top_k is None else args.top_k
            if args.sampler == "top_p":
                decoding["top_p"] = 0.9 if args.top_p is None else args.top_p
            how = f"{args.sampler} sampling (seed {args.seed})"
        else:
            decoding = {"beam_width": beam_width, "length_penalty": config.length_penalty}
            how = "greedy search" if beam_width == 1 else f"beam search of width {beam_width}"
        decoding.update(max_length=args.max_length, batch_size=args.batch_size)
        described = f"{args.model} ({describe_model(config)}), {how}"
        translate = model.translate

    # Blank lines stay blank (no sentence, no translation), so the lines keep matching.
    indices = [i for i, sentence in enumerate(sentences) if sentence.strip()]
    print(f"Translating {len(indices):,} sentence(s) with {described} ...", file=sys.stderr, flush=True)
    translations = [""] * len(sentences)
    if indices:
        for index, translation in zip(indices, translate([sentences[i] for i in indices], **decoding)):
            translations[index] = translation
    for translation in translations:
        # One line per sentence, whatever the translation holds.
        print_line(translation.replace("\r", " ").replace("\n", " "))


# --- evaluate ------------------------------------------------------------------------------

EVALUATE_OPTIONS = (
    VerbOption(("--data",), "'bible', 'bible:es-en', 'gcc', 'tfds:NAME[:SPLIT]' or a file of "
               "source<TAB>target lines (default: the run's data)", {"metavar": "NAME|PATH"}),
    VerbOption(("--beam-width",), "the beam search's width (default: the run's --beam-width, else "
               "4; a SavedModel's length penalty is the one it was exported with)",
               {"type": beam_width_value, "metavar": "N"}),
    VerbOption(("--max-sentences",), "score only the first N pairs (default: all)",
               {"type": positive_int, "metavar": "N"}),
    VerbOption(("--split-seed",), "the split seed of the held-out share (default: the run's, else 0)",
               {"type": int, "metavar": "N"}),
)

EVALUATE_HELP = (
    "BLEU and chrF (case-insensitive sacreBLEU) of greedy and beam search,\n"
    "  and BLEU by source length. By default the pairs are the run's held-out share,\n"
    "  rebuilt from its settings, so the result matches what train printed. A SavedModel\n"
    "  without --run-dir needs --data: the held-out share of that data's default split\n"
    "  (--split-seed) is scored. Other --data than the run's is scored whole.\n"
    "  --max-sentences N scores only the first N pairs (quick).\n\n"
    "  rnn-toolkit evaluate runs/translator --max-sentences 200\n"
    "  rnn-toolkit evaluate saved_models/translator --data bible --beam-width 8"
)


def _evaluate(args, source):
    from rnn_toolkit.tasks.translator.run import (
        decoding_settings,
        describe_model,
        format_results,
        load_data,
        score_translations,
        split_data,
    )

    config, split_name = evaluation_config(
        args, source.info, TranslatorRunConfig, DATA_NAMES, example="bible", sample_field="max_pairs"
    )
    data = load_data(config)
    if split_name == "heldout":
        try:
            part = split_data(data, config).heldout
        except RunSetupError as error:
            raise UsageError("--data", str(error)) from None
        where = (
            f"the held-out share of {config.data!r}: {config.heldout_fraction:.0%} of "
            f"{len(data):,} pairs, split seed {config.split_seed}"
        )
    else:
        part, where = data, f"all of {config.data!r}"
    if args.max_sentences and args.max_sentences < len(part):
        part = part.subset(range(args.max_sentences))
        where += f"; the first {args.max_sentences:,}"

    batch_size = args.batch_size or 64
    if source.model is not None:
        scored = describe_model(config)

        def translate(texts, **settings):
            return source.model.translate(texts, batch_size=batch_size, **settings)
    else:
        scored = f"the SavedModel {source.saved_path}"
        translate = saved_model_translator(source.loaded, batch_size)
    decodings = decoding_settings(config)
    print_line(f"Translating {len(part):,} sentences ({where}) with {scored}: {', '.join(decodings)} ...")
    results, _ = score_translations(translate, part, decodings)
    print_line(format_results({"heldout": results}))
    print_line(f"BLEU signature: {next(iter(results.values()))['bleu_signature']}")


TASK = TaskCommands(
    name=NAME,
    summary="a sequence-to-sequence encoder-decoder with attention",
    description="Trains an encoder-decoder translator (English to Spanish Bible verses by "
    "default): holds out a\nseeded share of all sentence pairs, early-stops on the validation "
    "loss, prints greedy\ntranslations of 3 held-out sentences after each epoch, then translates "
    "the held-out share\nwith greedy and beam search and prints BLEU and chrF, overall and by "
    "source length (and on\n--ood-data). Besides the shared run files it writes best.weights.h5 "
    "and translations.tsv\n(each held-out sentence with its reference, greedy and beam "
    "translations).",
    config=TranslatorRunConfig,
    train=train_translator_run,
    train_options=TRAIN_OPTIONS,
    option_help=OPTION_HELP,
    prepare_config=_prepare_config,
    recognizes=_recognizes,
    signatures="'translate'",
    export=_export,
    export_options=EXPORT_OPTIONS,
    export_help="serving_default (text -> translation, by beam search of --beam-width)\n"
    "             and translate (text, beam_width, max_length -> translation)",
    evaluate=_evaluate,
    evaluate_options=EVALUATE_OPTIONS,
    evaluate_help=EVALUATE_HELP,
    verbs=(
        Verb("translate", "translate sentences with a trained translator",
             "Translates each sentence with a translator run folder's model.keras or an\n"
             "exported SavedModel's 'translate' signature (TensorFlow alone), and prints one\n"
             "translation per line on stdout; status lines go to stderr.\n\n"
             "  rnn-toolkit translate runs/translator 'In the beginning God created the heaven.'\n"
             "  rnn-toolkit translate saved_models/translator --beam-width 8 < verses.txt\n\n"
             "With no SENTENCE (or '-'), one sentence per line is read from stdin; a blank line\n"
             "gives a blank line, so output line i translates input line i. Bytes that are not\n"
             "UTF-8 are replaced.",
             _add_translate_arguments, _translate),
    ),
)
