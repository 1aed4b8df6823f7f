"""No error line from TensorFlow when the mixed-precision invariant runs
float16 on a CPU whose oneDNN has no float16 (cellverify.training.notices)."""

from __future__ import annotations

import os

import pytest

from cellverify.training.notices import stderr_caught, without_float16_notice

from .fresh_process import ERROR_LINE, stderr_of

#: TensorFlow's notice, as this machine's TensorFlow 2.21 printed it.
NOTICE = (
    "E0000 00:00:1796586741.058775   22424 util.cc:131] oneDNN supports DT_HALF only on "
    "platforms with AVX-512. Falling back to the default Eigen-based implementation if present.\n"
)

#: One float16 op, with or without the notice spent first.
_FLOAT16_OP = """
import sys
import tensorflow as tf
if sys.argv[1] == "spent":
    from cellverify.training.notices import spend_float16_notice
    spend_float16_notice()
print(tf.add(tf.ones((1,), tf.float16), 1.0).numpy())
"""


def _stderr_of(*args: str) -> str:
    return stderr_of(*args, env={"TF_CPP_MIN_LOG_LEVEL": "2"})


def test_float16_notice_is_dropped_and_every_other_line_kept():
    other_error = "E0000 00:00:1.0   1 meta_optimizer.cc:967] remapper failed: something\n"
    lines = ["W0000 a warning\n", NOTICE, other_error, "plain text\n"]
    assert without_float16_notice(lines) == ["W0000 a warning\n", other_error, "plain text\n"]


def test_stderr_caught_holds_what_was_written_to_descriptor_2_and_restores_it():
    before = os.fstat(2).st_ino
    with stderr_caught() as lines:
        os.write(2, b"first\nsecond\n")
    assert lines == ["first\n", "second\n"]
    assert os.fstat(2).st_ino == before


def test_a_float16_op_after_the_notice_is_spent_prints_no_error_line():
    assert not ERROR_LINE.search(_stderr_of("-c", _FLOAT16_OP, "spent"))


def test_a_float16_op_without_spending_prints_the_notice_on_this_cpu():
    """The control: where this CPU's oneDNN lacks float16 the notice is
    there, so the test above can fail."""
    stderr = _stderr_of("-c", _FLOAT16_OP, "plain")
    if not ERROR_LINE.search(stderr):
        pytest.skip("this CPU's oneDNN has float16 kernels: TensorFlow prints no notice here")
    assert without_float16_notice(stderr.splitlines(keepends=True)) != stderr.splitlines(True)


def test_check_of_mixed_precision_prints_no_tensorflow_error_line():
    stderr = _stderr_of("-m", "cellverify.cli", "check", "--jobs", "1", "--profile", "dev",
                        "-k", "mixed_precision")  # fmt: skip
    assert not ERROR_LINE.search(stderr), stderr[-3000:]
