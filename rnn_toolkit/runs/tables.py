"""Plain-text tables for run reports and the command line."""


def format_table(rows):
    """`rows` (tuples of strings, the first one the header) as aligned columns with a rule
    under the header.

    >>> print(format_table([("model", "accuracy"), ("GRU", "81.2%")]))
    model  accuracy
    -----  --------
    GRU    81.2%
    """
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
