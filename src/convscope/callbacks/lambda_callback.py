"""``LambdaCallback``: a callback made of functions."""

from __future__ import annotations

from .base import Callback

HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
         "on_train_batch_end", "on_batch_begin", "on_batch_end", "on_test_begin", "on_test_end",
         "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
         "on_predict_batch_begin", "on_predict_batch_end")


class LambdaCallback(Callback):
    """Each given function becomes that hook, as Keras's ``LambdaCallback``.

    ``LambdaCallback(on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
    on_train_batch_begin=None, on_train_batch_end=None, **other_hooks)``; ``other_hooks`` may be any other
    hook of ``Callback`` (``on_test_end=...``, ``on_predict_batch_end=...``); any other name is a
    ``TypeError`` (Keras stores it silently). The functions are called as the hooks are:
    ``on_epoch_*(epoch, logs)``, ``on_train_*(logs)`` (and the other begin/end hooks), the batch hooks
    ``(batch, logs=...)``.

    >>> LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs["loss"]))
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        unknown = sorted(set(kwargs) - set(HOOKS))
        if unknown:
            raise TypeError(f"LambdaCallback: unknown hook(s) {', '.join(unknown)}; the hooks are {', '.join(HOOKS)}")
        given = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        for name, function in given.items():
            if function is None:
                continue
            if not callable(function):
                raise TypeError(f'LambdaCallback: argument "{name}" must be a function, received {function!r}')
            setattr(self, name, function)
