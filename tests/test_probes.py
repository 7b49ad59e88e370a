"""The probe signals are exact on hand-written texts, edge cases included."""

import numpy as np
import pytest

from rnn_toolkit.inspection import probes


def marks(text, pattern):
    """`pattern`'s `^` positions as a 0/1 list: how the expected spans are written below."""
    assert len(pattern) == len(text), (len(text), len(pattern))
    return [1.0 if mark == "^" else 0.0 for mark in pattern]


# --- inside_quotes ------------------------------------------------------------------


def test_quotes_open_inside_and_close_outside():
    text = 'he said "no" twice'
    assert probes.inside_quotes(text).tolist() == marks(text, '        ^^^       ')


def test_an_unterminated_quote_runs_to_the_end_or_to_the_newline():
    text = 'a "open\nstill'
    assert probes.inside_quotes(text).tolist() == marks(text, '  ^^^^^^^^^^^')
    assert probes.inside_quotes(text, end_at_newline=True).tolist() == marks(text, '  ^^^^^      ')


def test_an_escaped_quote_does_not_close_only_with_an_escape_character():
    text = r'"a\"b" c'
    assert probes.inside_quotes(text, escape_character="\\").tolist() == marks(text, '^^^^^   ')
    # Without escapes the backslashed quote closes, and the last quote opens again.
    assert probes.inside_quotes(text).tolist() == marks(text, '^^^  ^^^')


def test_other_quote_characters_inside_a_quotation_change_nothing():
    text = """x"it's"y'say "hi"'z"""
    both = probes.inside_quotes(text, "\"'")
    assert both.tolist() == marks(text, ' ^^^^^  ^^^^^^^^^  ')


def test_paired_quotes_open_and_close_with_different_characters():
    text = "“a” b «c»"
    assert probes.inside_quotes(text, ["“”", "«»"]).tolist() == marks(text, "^^    ^^ ")


@pytest.mark.parametrize("quotes", ["", [], ["abc"], [1]])
def test_bad_quotes_are_refused(quotes):
    with pytest.raises(ValueError, match="quotes"):
        probes.inside_quotes("text", quotes)


# --- inside_string_literal and inside_comment ---------------------------------------


def test_python_strings_and_comments_are_read_as_a_lexer_reads_them():
    # "|" stands for a newline, so that each expectation lines up under its text.
    text = r'''s = 'a#b'  # it's "x"|t = """doc|'q'""" + ""|'''
    strs = r'''    ^^^^                  ^^^^^^^^^^^^    ^  '''
    cmts = r'''           ^^^^^^^^^^                        '''
    text = text.replace("|", "\n")
    assert probes.inside_string_literal(text).tolist() == marks(text, strs)
    assert probes.inside_comment(text).tolist() == marks(text, cmts)


def test_python_escapes_and_an_unterminated_string_ending_at_its_newline():
    # The first string ends at the newline, so the next quote opens a string that hides
    # the "# c": a lexer that recovers, not one that marks the rest of the file a string.
    text = r"x = 'it\'s|ok' # c"
    strs = r"    ^^^^^^   ^^^^^"
    text = text.replace("|", "\n")
    assert probes.inside_string_literal(text).tolist() == marks(text, strs)
    assert not probes.inside_comment(text).any()


def test_c_comments_do_not_nest_and_start_at_their_second_character():
    text = "a/*b/*c*/d*/e//f\ng"
    assert probes.inside_comment(text, language="c").tolist() == marks(text, "  ^^^^^^      ^^  ")


def test_c_comment_markers_inside_strings_and_an_unclosed_block_comment():
    text = 'p("/*", \'"\'); /* open'
    assert probes.inside_comment(text, language="c").tolist() == marks(text, "               ^^^^^^")
    assert probes.inside_string_literal(text, language="c").tolist() == marks(
        text, "  ^^^   ^^           "
    )


def test_tex_comments_skip_an_escaped_percent():
    text = "5\\% off % note\nx"
    assert probes.inside_comment(text, language="tex").tolist() == marks(text, "        ^^^^^^  ")
    with pytest.raises(ValueError, match="tex"):
        probes.inside_string_literal(text, language="tex")


def test_an_unknown_language_is_refused():
    with pytest.raises(ValueError, match="language"):
        probes.inside_comment("# x", language="fortran")


# --- bracket_depth --------------------------------------------------------------------


def test_bracket_depth_counts_all_kinds_together_or_one_kind():
    text = "f(a[b{c}])"
    assert probes.bracket_depth(text).tolist() == [0, 1, 1, 2, 2, 3, 3, 2, 1, 0]
    assert probes.bracket_depth(text, "[]").tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 0, 0]


def test_bracket_depth_never_goes_below_zero():
    assert probes.bracket_depth("))(").tolist() == [0, 0, 1]


def test_bracket_depth_skips_strings_and_comments_of_a_language():
    text = "g('(', 1)  # )"
    # Counting every bracket, the "(" in the string is closed by the ")" in the comment.
    assert probes.bracket_depth(text).tolist() == [0, 1, 1, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 0]
    coded = probes.bracket_depth(text, language="python").tolist()
    assert coded == [0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]


@pytest.mark.parametrize("brackets", ["", "(", "(()", "(("])
def test_bad_brackets_are_refused(brackets):
    with pytest.raises(ValueError, match="brackets"):
        probes.bracket_depth("()", brackets)


# --- Line probes -----------------------------------------------------------------------


def test_position_in_line_and_length_remaining_add_up_to_the_line_length():
    text = "abc\n\nde"
    assert probes.position_in_line(text).tolist() == [1, 2, 3, 0, 0, 1, 2]
    assert probes.line_length_remaining(text).tolist() == [2, 1, 0, 0, 2, 1, 0]


def test_line_probes_of_a_text_without_newlines_and_of_an_empty_text():
    assert probes.position_in_line("xyz").tolist() == [1, 2, 3]
    assert probes.line_length_remaining("xyz").tolist() == [2, 1, 0]
    for probe in (probes.position_in_line, probes.line_length_remaining, probes.indentation_depth):
        assert probe("").shape == (0,)


def test_indentation_depth_in_levels_with_tabs_and_blank_lines():
    text = "a\n    b\n      c\n\tx\n  \n"
    expected = [0, 0] + [1] * 6 + [1.5] * 8 + [2] * 3 + [0.5] * 3
    assert probes.indentation_depth(text).tolist() == expected
    assert probes.indentation_depth("  x", indent_width=1).tolist() == [2, 2, 2]


def test_indentation_depth_splits_lines_at_newlines_only():
    # A form feed or a carriage return is not a line break here.
    assert probes.indentation_depth("  a\x0c b\n").tolist() == [0.5] * 7


# --- User-supplied probes ------------------------------------------------------------


def test_per_character_and_as_probe_take_any_signal():
    assert probes.per_character("aB!", str.isalpha).tolist() == [1, 1, 0]
    assert probes.as_probe("ab", np.array([1, np.nan]))[0] == 1.0
    assert probes.as_probe("ab", lambda text: [len(text)] * 2).tolist() == [2, 2]
    with pytest.raises(ValueError, match="one value per character"):
        probes.as_probe("abc", [1, 2])
    with pytest.raises(ValueError, match="infinite"):
        probes.as_probe("a", [np.inf])
    with pytest.raises(TypeError, match="text"):
        probes.position_in_line(["a"])


def test_standard_probes_for_prose_and_for_code():
    prose = probes.standard_probes('"Hi," she said.\n')
    assert sorted(prose) == ["bracket_depth", "inside_quotes", "line_length_remaining", "position_in_line"]
    code = probes.standard_probes('x = "a\\"b"  # "c"\n', language="python")
    # In code a backslash escapes a quote; the quoted text in the comment is still a quote
    # to inside_quotes, but not a string literal.
    assert code["inside_quotes"].tolist() == code["inside_string_literal"].tolist()[:12] + [0, 0, 1, 1, 0, 0]
    assert set(code) == set(prose) | {"indentation_depth", "inside_comment", "inside_string_literal"}
    assert all(values.dtype == np.float64 for values in code.values())
