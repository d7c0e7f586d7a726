"""Keras callbacks (`ks.callbacks.EarlyStopping`, `keras.callbacks.ModelCheckpoint`, ...)."""
from .models.callbacks import (BaseLogger, Callback, CallbackList, CSVLogger, EarlyStopping,  # noqa: F401
                               History, LambdaCallback, LearningRateScheduler, ReduceLROnPlateau,
                               RemoteMonitor, TerminateOnNaN)
from .models.callbacks_io import BackupAndRestore, ModelCheckpoint, TensorBoard  # noqa: F401
from .models.progbar import ProgbarLogger  # noqa: F401

__all__ = ["Callback", "CallbackList", "History", "BaseLogger", "ProgbarLogger", "EarlyStopping",
           "ReduceLROnPlateau", "LearningRateScheduler", "TerminateOnNaN", "LambdaCallback", "CSVLogger",
           "ModelCheckpoint", "TensorBoard", "BackupAndRestore", "RemoteMonitor"]
