"""Small deterministic data files for the tests of every task (runs in seconds)."""

WORDS = "the quick brown fox jumps over a lazy dog and then runs far away into woods".split()


def write_tiny_corpus(path, lines=300):
    """A small deterministic text: enough windows of 21 characters for a few batches of 8."""
    text = "\n".join(
        " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(8)) for i in range(lines)
    )
    path.write_text(text + "\n", encoding="utf-8")
    return path


POSITIVE = "great fine wonderful lovely superb moving funny brilliant".split()
NEGATIVE = "awful dull boring bad terrible tedious weak flat".split()
FILLER = "the film was a story with actors and plot it is".split()


def write_reviews(path, lines=40, scores=False):
    """A deterministic CSV of short 'reviews': one sentiment word among filler words.

    With `scores=True` the label column holds signed scores (40 distinct values, so
    they are read as scores, and the class is their sign).
    """
    rows = ["text,score" if scores else "text,label"]
    for i in range(lines):
        positive = i % 2 == 1
        words = [FILLER[(i * 5 + j * 3) % len(FILLER)] for j in range(3 + i % 5)]
        words.insert(i % len(words), (POSITIVE if positive else NEGATIVE)[i % 8])
        if scores:
            label = f"{(1 if positive else -1) * (0.5 + 0.07 * i):.2f}"
        else:
            label = "positive" if positive else "negative"
        rows.append(" ".join(words) + "," + label)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path




ENGLISH = "the man woman dog cat sees eats loves bread water house big small red and".split()
SPANISH = "el hombre mujer perro gato ve come ama pan agua casa grande pequeño rojo y".split()


def write_pairs(path, count=700, offset=0):
    """Deterministic sentence pairs, one word-for-word translation per line (TSV)."""
    rows = []
    for i in range(offset, offset + count):
        ids = [(i * 7 + j * 5 + j * j) % len(ENGLISH) for j in range(3 + i % 6)]
        source = " ".join(ENGLISH[k] for k in ids).capitalize() + "."
        target = " ".join(SPANISH[k] for k in ids).capitalize() + "."
        rows.append(f"{source}\t{target}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path






COLOURS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (40, 60, 220), "black": (10, 10, 10)}
SHAPES = ("square", "circle", "bar")


def write_caption_folder(folder, count=40, size=24):
    """A folder of small RGBA PNGs (a coloured shape on a transparent sheet), each with a
    same-named .txt file holding two reference captions ("a red circle", ...)."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    colours = list(COLOURS)
    grid = np.mgrid[0:size, 0:size]
    centre = (size - 1) / 2
    for i in range(count):
        colour, shape = colours[i % len(colours)], SHAPES[(i // len(colours)) % len(SHAPES)]
        inside = {
            "square": (abs(grid[0] - centre) < size / 3) & (abs(grid[1] - centre) < size / 3),
            "circle": (grid[0] - centre) ** 2 + (grid[1] - centre) ** 2 < (size / 3) ** 2,
            "bar": abs(grid[0] - centre) < size / 8,
        }[shape]
        pixels = np.zeros((size, size, 4), np.uint8)
        pixels[inside] = (*COLOURS[colour], 255)
        name = f"{shape}_{colour}_{i:03d}"
        Image.fromarray(pixels, "RGBA").save(folder / f"{name}.png")
        (folder / f"{name}.txt").write_text(f"a {colour} {shape}\n{colour} {shape}\n", encoding="utf-8")
    return folder


def write_frame_folder(folder, count=5, size=40):
    """A folder of grey PNG frames (a bright square moving right on black): one clip."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        pixels = np.zeros((size, size), np.uint8)
        left = 2 + 5 * index
        pixels[10:22, left:left + 12] = 255
        Image.fromarray(pixels).save(folder / f"frame_{index:03d}.png")
    return folder
