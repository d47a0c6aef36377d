"""Tests of the lme4 formula splitter (mixedmodels.formula.bars)."""
from __future__ import annotations

import dataclasses

import pytest

from mixedmodels.errors import FormulaError, MixedModelsError
from mixedmodels.formula.bars import Bar, MixedFormula, parse_formula


def B(lhs, group, correlated=True):
    """Expected bar without its position: (lhs, group tuple, correlated)."""
    return (lhs, tuple(group.split(":")), correlated)


def shape(parsed):
    return [(b.lhs, b.group, b.correlated) for b in parsed.bars]


CASES = [
    ("Reaction ~ Days + (Days | Subject)", "Reaction", "Days", [B("Days", "Subject")]),
    ("Yield ~ 1 + (1|Batch)", "Yield", "1", [B("1", "Batch")]),
    ("strength ~ 1 + (1|batch/cask)", "strength", "1", [B("1", "batch"), B("1", "cask:batch")]),
    ("strength ~ 1 + (1|batch) + (1|sample)", "strength", "1", [B("1", "batch"), B("1", "sample")]),
    ("diameter ~ 1 + (1|plate) + (1|sample)", "diameter", "1", [B("1", "plate"), B("1", "sample")]),
    (
        "Reaction ~ Days + (1|Subject) + (0+Days|Subject)",
        "Reaction",
        "Days",
        [B("1", "Subject"), B("0 + Days", "Subject")],
    ),
    (
        "Reaction ~ Days + (Days||Subject)",
        "Reaction",
        "Days",
        [B("1", "Subject", False), B("0 + Days", "Subject", False)],
    ),
    (
        "Reaction ~ 1 + offset(10 * Days) + (Days|Subject)",
        "Reaction",
        "1 + offset(10 * Days)",
        [B("Days", "Subject")],
    ),
    (
        "incidence ~ period + offset(log(size)) + (1|herd)",
        "incidence",
        "period + offset(log(size))",
        [B("1", "herd")],
    ),
    ("incidence/size ~ period + (1|herd)", "incidence/size", "period", [B("1", "herd")]),
    (
        "cbind(incidence, size - incidence) ~ period + (1|herd)",
        "cbind(incidence, size - incidence)",
        "period",
        [B("1", "herd")],
    ),
    ("log(y) ~ x + (1|g)", "log(y)", "x", [B("1", "g")]),
    (
        "y ~ 1 + service + (1|s) + (1|d) + (1|dept)",
        "y",
        "1 + service",
        [B("1", "s"), B("1", "d"), B("1", "dept")],
    ),
    (
        "total.fruits ~ nutrient*amd + rack + status + (1|popu) + (1|gen)",
        "total.fruits",
        "nutrient*amd + rack + status",
        [B("1", "popu"), B("1", "gen")],
    ),
    ("y ~ I((x+1)^2) + (x|g)", "y", "I((x+1)^2)", [B("x", "g")]),
    ("y ~ poly(x, 2) + (1 + x|g)", "y", "poly(x, 2)", [B("1 + x", "g")]),
    ("y ~ (1|a:b)", "y", "1", [B("1", "a:b")]),
    ("y ~ (1|a/b/c)", "y", "1", [B("1", "a"), B("1", "b:a"), B("1", "c:b:a")]),
    ("y ~ (1|a:b/c)", "y", "1", [B("1", "a:b"), B("1", "c:a:b")]),
    ("y ~ (1|a/b:c)", "y", "1", [B("1", "a"), B("1", "b:c:a")]),
    (
        "y ~ x + (x + z || g)",
        "y",
        "x",
        [B("1", "g", False), B("0 + x", "g", False), B("0 + z", "g", False)],
    ),
    ("y ~ x + (0 + x || g)", "y", "x", [B("0 + x", "g", False)]),
    ("y ~ x + (-1 + x || g)", "y", "x", [B("0 + x", "g", False)]),
    ("y ~ x + (x - 1 || g)", "y", "x", [B("0 + x", "g", False)]),
    ("y ~ x + (1 + x || g)", "y", "x", [B("1", "g", False), B("0 + x", "g", False)]),
    ("y ~ (1 || g)", "y", "1", [B("1", "g", False)]),
    (
        "y ~ (x || a/b)",
        "y",
        "1",
        [B("1", "a", False), B("1", "b:a", False), B("0 + x", "a", False), B("0 + x", "b:a", False)],
    ),
    ("y ~ f + (0 + f|g)", "y", "f", [B("0 + f", "g")]),
    ("y ~ x + (1|g) + (0 + x|g) + (1|g:h)", "y", "x", [B("1", "g"), B("0 + x", "g"), B("1", "g:h")]),
    ("y ~ 0 + (1|g)", "y", "0", [B("1", "g")]),
    ("y ~ -1 + x + (1|g)", "y", "-1 + x", [B("1", "g")]),
    ("y ~ x - 1 + (1|g)", "y", "x - 1", [B("1", "g")]),
    ("y ~ (1|g) - 1", "y", "-1", [B("1", "g")]),
    ("y ~ (1|g) + x + (1|h) + z", "y", "x + z", [B("1", "g"), B("1", "h")]),
    ("y ~ (-1 + x|g)", "y", "1", [B("-1 + x", "g")]),
    ("y ~ ((1|g))", "y", "1", [B("1", "g")]),
    ("y ~ x*1e-5 + (1|g)", "y", "x*1e-5", [B("1", "g")]),
    ("y ~ x %in% w + (1|g)", "y", "x %in% w", [B("1", "g")]),
    ("y ~ x + (1|cask_id)", "y", "x", [B("1", "cask_id")]),
    ("y ~ x + (1|.g)", "y", "x", [B("1", ".g")]),
    ("y ~ x + (1|`my var`)", "y", "x", [B("1", "my var")]),
    ("y ~ x + (1|`a/b`:c)", "y", "x", [B("1", "a/b:c")]),
    ("y ~ `odd|name` + (1|g)", "y", "`odd|name`", [B("1", "g")]),
    ('y ~ I(s == "a|b") + (1|g)', "y", 'I(s == "a|b")', [B("1", "g")]),
    ("y ~ x", "y", "x", []),
    ("y ~ (1|g)", "y", "1", [B("1", "g")]),
]


@pytest.mark.parametrize("text, response, fixed, bars", CASES)
def test_parse(text, response, fixed, bars):
    parsed = parse_formula(text)
    assert isinstance(parsed, MixedFormula)
    assert parsed.text == text
    assert parsed.response == response
    assert parsed.fixed == fixed
    assert shape(parsed) == bars


@pytest.mark.parametrize(
    "squeezed, spaced",
    [
        ("Reaction~Days+(Days|Subject)", "Reaction ~ Days + (Days | Subject)"),
        ("Reaction~Days+(1+Days|Subject)", "Reaction  ~  Days\n + ( 1 +  Days |\tSubject )"),
        ("y~x+(x||g/h)", "y ~ x + ( x || g / h )"),
        ("y~0+x+(0+x|a:b)", "y ~ 0 + x + (0 + x | a : b)"),
    ],
)
def test_whitespace_does_not_matter(squeezed, spaced):
    a, b = parse_formula(squeezed), parse_formula(spaced)
    assert (a.response, a.fixed, shape(a)) == (b.response, b.fixed, shape(b))


def test_lhs_is_normalised():
    assert parse_formula("y ~ (1+Days|g)").bars[0].lhs == "1 + Days"
    assert parse_formula("y ~ (0+Days|g)").bars[0].lhs == "0 + Days"


@pytest.mark.parametrize(
    "text, positions",
    [
        ("Reaction ~ Days + (Days | Subject)", [18]),
        ("y ~ (1|g) + x + (x||h)", [4, 16, 16]),
        ("strength ~ 1 + (1|batch/cask)", [15, 15]),
        ("y ~ ((1|g))", [5]),
    ],
)
def test_positions_point_at_opening_paren(text, positions):
    bars = parse_formula(text).bars
    assert [b.position for b in bars] == positions
    assert all(text[p] == "(" for p in positions)


@pytest.mark.parametrize(
    "group, name",
    [(("Subject",), "Subject"), (("cask", "batch"), "cask:batch"), (("c", "b", "a"), "c:b:a")],
)
def test_group_name(group, name):
    assert Bar("1", group, True, 0).group_name == name


def test_group_name_of_slash_term():
    names = [b.group_name for b in parse_formula("strength ~ 1 + (1|batch/cask)").bars]
    assert names == ["batch", "cask:batch"]


def test_results_are_frozen():
    parsed = parse_formula("y ~ x + (1|g)")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.fixed = "z"
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.bars[0].lhs = "0"
    assert isinstance(parsed.bars, tuple)


ERRORS = [
    # (formula, position, text the message must contain)
    ("y + x", 0, "'~'"),
    ("", 0, "'~'"),
    ("~ x + (1|g)", 0, "response"),
    ("   ~ x", 3, "response"),
    ("y ~ x ~ z", 6, "more than one '~'"),
    ("y ~", 2, "no terms"),
    ("y ~   ", 2, "no terms"),
    ("y ~ (1|g", 4, "unmatched '('"),
    ("y ~ x + f((1|g)", 9, "unmatched '('"),
    ("y ~ (1|g))", 9, "unmatched ')'"),
    ("y) ~ x", 1, "unmatched ')'"),
    ("y ~ x + `abc", 8, "unterminated"),
    ("y ~ ( | g)", 6, "( | g)"),
    ("y ~ (|g)", 5, "(|g)"),
    ("y ~ (1 | )", 7, "(1 | )"),
    ("y ~ x + (1 || )", 11, "(1 || )"),
    ("y ~ x | g", 6, "x | g"),
    ("y ~ 1 + x || g", 10, "x || g"),
    ("y ~ f(1|g)", 7, "f(1|g)"),
    ("y ~ x + log(1 + (1|g))", 18, "log(1 + (1|g))"),
    ("y ~ x * (1|g)", 10, "x * (1|g)"),
    ("y ~ ((1|g) + x)", 7, "((1|g) + x)"),
    ("y ~ (1 | (x|g))", 11, "(1 | (x|g))"),
    ("y ~ (1|g|h)", 8, "(1|g|h)"),
    ("y ~ x - (1|g)", 8, "(1|g)"),
    ("y ~ (1 | g + h)", 9, "g + h"),
    ("y ~ (1|log(g))", 7, "log(g)"),
    ("y ~ (1|1)", 7, "'1'"),
    ("y ~ (1|g/)", 7, "g/"),
    ("y ~ (1|:g)", 7, ":g"),
    ("y ~ (0 || g)", 7, "(0 || g)"),
    ("y ~ (1 + x - z || g)", 13, "-z"),
    ("y ~ x + + z", 6, "empty term"),
    ("y ~ x + ", 6, "empty term"),
    ("y ~ x + (1|g) +", 14, "empty term"),
    ("y ~ (1 + | g)", 7, "empty term"),
]


@pytest.mark.parametrize("text, position, fragment", ERRORS)
def test_errors(text, position, fragment):
    with pytest.raises(FormulaError) as info:
        parse_formula(text)
    err = info.value
    assert err.position == position
    assert err.formula == text
    assert fragment in str(err)
    # The caret line sits under the offending character.
    assert str(err).splitlines()[-1].index("^") == position + 2


def test_formula_error_is_a_value_error():
    with pytest.raises(ValueError):
        parse_formula("y ~ x | g")
    assert issubclass(FormulaError, MixedModelsError)
