"""TensorFlow's log output in the ``keras-vae`` command: silent unless ``--debug``.

TensorFlow writes a dozen lines to the process's standard error when it
loads (absl's "before InitializeLog" notice, CUDA probing on machines without
a GPU, CPU instruction notes), some before ``TF_CPP_MIN_LOG_LEVEL`` is read.
:func:`import_tensorflow` loads TensorFlow and Keras with file descriptor 2
redirected to a temporary file, and shows what was captured only if the
import fails.
"""

import os
import sys
import tempfile

_state = {"debug": False}


def configure(debug=False):
    """Set the log policy of this process before TensorFlow loads.

    Args:
        debug: keep TensorFlow's log lines (and Python tracebacks).
    """
    _state["debug"] = bool(debug)
    if not debug:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def import_tensorflow():
    """Import TensorFlow and Keras, quietly unless :func:`configure` asked for ``debug``.

    Returns:
        The ``tensorflow`` module.
    """
    if "tensorflow" in sys.modules or _state["debug"]:
        import keras  # noqa: F401
        import tensorflow as tf

        _quiet_python_loggers(tf)
        return tf
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow as tf

            # Device probing logs too (the CUDA lines): do it while captured.
            # Physical devices only, so logical CPU devices can still be set.
            tf.config.list_physical_devices()
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    _quiet_python_loggers(tf)
    return tf


def _quiet_python_loggers(tf):
    if _state["debug"]:
        return
    tf.get_logger().setLevel("ERROR")
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # absl comes with TensorFlow; nothing to quiet without it.
        pass
