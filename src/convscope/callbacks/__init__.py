"""Callbacks, with Keras 3's names, arguments, messages and hook points (``keras.callbacks``).

``fit`` wraps its callbacks in a ``CallbackList`` (adding ``History`` and, unless
``verbose=0``, ``ProgbarLogger``) and calls, with a dict of logs each time:
``on_train_begin``; per epoch ``on_epoch_begin``, per batch ``on_train_batch_begin`` /
``on_train_batch_end``, then (with validation) ``on_test_begin``, ``on_test_batch_*``,
``on_test_end``, then ``on_epoch_end`` with the epoch's metrics and ``val_*``; then
``on_train_end``. ``evaluate`` calls the ``on_test_*`` hooks and ``predict`` the
``on_predict_*`` ones. A callback stops training with ``model.stop_training = True``.
See ``base`` for every hook's logs.

=========================  ============================================================
``Callback``               the base class (``base``)
``CallbackList``           dispatches every hook to a list of callbacks (``callback_list``)
``History``                every epoch's logs, what ``fit`` returns (``history``)
``ProgbarLogger``          the progress bar / one line per epoch (``progbar``)
``EarlyStopping``          stop when the monitored value stops improving (``early_stopping``)
``TerminateOnNaN``         stop at the first non-finite loss (``terminate_on_nan``)
``ModelCheckpoint``        save the model or weights as training goes (``checkpoint``)
``BackupAndRestore``       resume an interrupted fit exactly (``backup``)
``ReduceLROnPlateau``      lower the learning rate on a plateau (``learning_rate``)
``LearningRateScheduler``  the learning rate as a function of the epoch (``learning_rate``)
``CSVLogger``              one CSV row per epoch (``csv_logger``)
``LambdaCallback``         a callback made of functions (``lambda_callback``)
``TensorBoard``            event files for TensorBoard (``tensorboard``; needs tensorboardX)
=========================  ============================================================
"""

from .backup import BackupAndRestore
from .base import Callback, pythonify_logs
from .callback_list import CallbackList
from .checkpoint import ModelCheckpoint
from .csv_logger import CSVLogger
from .early_stopping import EarlyStopping
from .history import History
from .lambda_callback import LambdaCallback
from .learning_rate import LearningRateScheduler, ReduceLROnPlateau
from .monitor import MonitorCallback
from .progbar import ProgbarLogger, format_logs
from .tensorboard import TensorBoard
from .terminate_on_nan import TerminateOnNaN

__all__ = [
    "BackupAndRestore", "CSVLogger", "Callback", "CallbackList", "EarlyStopping", "History", "LambdaCallback",
    "LearningRateScheduler", "ModelCheckpoint", "MonitorCallback", "ProgbarLogger", "ReduceLROnPlateau",
    "TensorBoard", "TerminateOnNaN", "format_logs", "pythonify_logs",
]
