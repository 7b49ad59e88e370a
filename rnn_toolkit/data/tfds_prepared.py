"""Loading a TensorFlow Datasets dataset that is already prepared on this machine.

Every TFDS reader of `rnn_toolkit.data` goes through `load_prepared`: nothing is
downloaded (`download=False`), because offline `tfds.load` would retry its downloads for
minutes before failing, and the two ways it can fail get errors that say what to do.
`tensorflow_datasets` is imported here, on use, not with `rnn_toolkit`.
"""


def load_prepared(name, *, split, data_dir=None):
    """`tfds.load(name, split=split, download=False, with_info=True)` with clear errors.

    Args:
        name: the TFDS name (with its config), e.g. `"imdb_reviews"`.
        split: the split, e.g. `"train"` or `"test[:10%]"`.
        data_dir: TFDS data folder (default: TFDS's own, `~/tensorflow_datasets`).

    Returns:
        `(dataset, info)`.

    Raises:
        ValueError: `name` is no TFDS dataset.
        FileNotFoundError: the dataset is not prepared in the data folder.
    """
    import tensorflow_datasets as tfds

    try:
        return tfds.load(name, split=split, data_dir=data_dir, download=False, with_info=True)
    except tfds.core.registered.DatasetNotFoundError:
        # A misspelt name is not an unprepared dataset (and TFDS' message lists ~1,000 names).
        raise ValueError(f"{name!r} is not a TFDS dataset name.") from None
    except Exception as error:  # TFDS raises several unrelated types for "not prepared"
        raise FileNotFoundError(
            f"TFDS dataset {name!r} (split {split!r}) is not prepared in "
            f"{data_dir or 'the default TFDS folder'} ({type(error).__name__}: {error}). "
            f"Run `tfds build {name}` where there is a network and copy its folder here, or "
            "point `data_dir` to it (this machine cannot download it)."
        ) from None
