"""The command line: answers on stdout, one-line errors with exit code 2."""

import pytest
from cli import lossfuzz


def test_oracle_prints_exact_value_and_correct_rounding():
    r = lossfuzz(
        "oracle",
        "sigmoid_cross_entropy_with_logits",
        "logits=-50",
        "labels=0",
        "--dtype",
        "float32",
    )
    assert r.returncode == 0, r.stderr
    assert "exact 1.928749847963917783017157e-22" in r.stdout
    assert "float32 1.9287498933537385e-22 (0x1.d257d60000000p-73)" in r.stdout


def test_losses_lists_every_definition():
    r = lossfuzz("losses")
    assert r.returncode == 0
    for name in (
        "sigmoid_cross_entropy_with_logits",
        "sparse_categorical_crossentropy_renormalized",
        "logsumexp",
    ):
        assert name in r.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["oracle", "sigmoid_crossentropy", "logits=1", "labels=0"],
            "did you mean 'sigmoid_cross_entropy_with_logits'",
        ),
        (["oracle", "softplus", "logits=1", "--dtype", "float8"], "unknown dtype 'float8'"),
        (
            ["oracle", "binary_crossentropy", "probs=1.5", "labels=1"],
            "probs must lie in [0, 1]; got 1.5",
        ),
        (["oracle", "softplus", "logits=abc"], "is not a number"),
        (["oracle", "softplus", "probs=1"], "softplus takes logits"),
        (["oracle", "softplus", "logits=1", "--bogus"], "unrecognized arguments"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_gets_one_line_and_exit_code_2(args, message):
    r = lossfuzz(*args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("lossfuzz: error:")
