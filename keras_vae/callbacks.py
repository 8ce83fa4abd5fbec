"""Callbacks used by keras-vae training."""

import math

import keras


class StopOnNaN(keras.callbacks.Callback):
    """Stop training with ``FloatingPointError`` as soon as the loss is NaN/inf.

    Raising from the batch hook ends ``fit`` before the epoch ends, so epoch
    checkpoints (``BackupAndRestore``, ``ModelCheckpoint``) keep the last good
    weights instead of being overwritten with non-finite ones.
    """

    def __init__(self):
        super().__init__()
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True
            raise FloatingPointError(
                f"Training stopped: the loss became {float(loss)} at epoch "
                f"{self._epoch + 1}, batch {batch + 1}. Try a lower learning rate, "
                "check the data for extreme values, or use gradient clipping "
                "(e.g. compile(optimizer=keras.optimizers.Adam(1e-3, clipnorm=10)))."
            )
