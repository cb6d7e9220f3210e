"""The pytest plugin gates a team's own loss from its own test suite (run in a real pytest)."""

import subprocess
import sys
import textwrap

LOSSES = textwrap.dedent(
    '''
    import numpy as np


    def broken_bce(logits, labels):
        """sigmoid, then log: overflows and turns into NaN at extreme logits"""
        q = 1 / (1 + np.exp(-logits))
        return -(labels * np.log(q) + (1 - labels) * np.log(1 - q))


    def careful_bce(logits, labels):
        """z softplus(-x) + (1 - z) softplus(x) in float64, zero coefficients dropped"""
        x, z = logits.astype(np.float64), labels.astype(np.float64)
        sp = lambda t: np.maximum(t, 0) + np.log1p(np.exp(-np.abs(t)))
        with np.errstate(all="ignore"):
            a = np.where(z == 0, 0.0, z * sp(-x))
            b = np.where(z == 1, 0.0, (1 - z) * sp(x))
        return (a + b).astype(logits.dtype)
    '''
)
TESTS = textwrap.dedent(
    """
    from mylosses import broken_bce, careful_bce


    def test_broken(lossfuzz):
        lossfuzz.check(broken_bce, loss="sigmoid_cross_entropy_with_logits", max_ulp=4)


    def test_careful(lossfuzz):
        lossfuzz.check(careful_bce, loss="sigmoid_cross_entropy_with_logits", max_ulp=4)
    """
)


def test_plugin_fails_a_broken_loss_with_its_reproducer_and_passes_a_careful_one(tmp_path):
    (tmp_path / "mylosses.py").write_text(LOSSES)
    (tmp_path / "test_user.py").write_text(TESTS)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--lossfuzz-budget=10",
            "--lossfuzz-seed=1",
            "test_user.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    out = r.stdout + r.stderr
    assert "1 failed, 1 passed" in out, out
    assert "FAILED test_user.py::test_broken" in out
    assert "lossfuzz: mylosses:broken_bce [float32] is not within 4 ULP" in out
    assert "label_smoothing" not in out  # the reproducer defines only what the loss takes
    assert "from mylosses import broken_bce" in out  # the reproducer


STABLE = textwrap.dedent(
    '''
    import numpy as np


    def documented_formula(logits, labels):
        """TensorFlow's documented stable form: exact at neither end"""
        x, z = logits, labels
        return np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))
    '''
)
STABLE_TEST = textwrap.dedent(
    """
    from mylosses import documented_formula


    def test_formula(lossfuzz):
        lossfuzz.check(documented_formula, loss="sigmoid_cross_entropy_with_logits", max_ulp=4)
    """
)


def test_one_failure_message_lists_the_cancellation_and_the_nan_at_infinite_logits(tmp_path):
    (tmp_path / "mylosses.py").write_text(STABLE)
    (tmp_path / "test_user.py").write_text(STABLE_TEST)
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    out = r.stdout
    assert "1 failed" in out, out + r.stderr
    accuracy, special = out.split("== finite-input accuracy")[1].split("== special values")
    assert "inaccurate at logits=+" in accuracy and "labels=between" in accuracy  # x - x z
    assert "nan at logits=+inf" in special or "nan at logits=-inf" in special
    assert out.count("# lossfuzz reproducer") >= 2
