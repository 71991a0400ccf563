"""``CallbackList``: the one object ``fit``, ``evaluate`` and ``predict`` call every hook on."""

from __future__ import annotations

from .base import Callback, pythonify_logs
from .history import History
from .progbar import ProgbarLogger


class CallbackList(Callback):
    """All of a run's callbacks behind one set of hooks, as Keras's ``keras.callbacks.CallbackList``.

    ``CallbackList(callbacks=None, add_history=False, add_progbar=False, model=None, **params)``

    * ``callbacks``: a Callback, or a (nested) list or tuple of them; anything else is a ``TypeError``
      naming its type.
    * ``add_history``: append a ``History`` unless one is given (``fit`` passes True); it becomes
      ``self.history`` and, once ``model`` is set, ``model.history``.
    * ``add_progbar``: append a ``ProgbarLogger`` unless one is given (``fit`` / ``evaluate`` /
      ``predict`` pass ``verbose != 0``); it is ``self.progbar``.
    * ``model``: given to every callback (``set_model``).
    * ``params``: given to every callback (``set_params``) when not empty: ``fit`` passes
      ``verbose=..., epochs=..., steps=<batches per epoch>``; ``evaluate`` and ``predict`` pass
      ``epochs=1`` and their own ``steps``.

    Order: the given callbacks, then History, then ProgbarLogger (so History and the bar see what the
    given callbacks add to the logs, e.g. ``learning_rate``).

    Every hook has the name and arguments of ``Callback``'s: ``on_train_begin(logs=None)``,
    ``on_epoch_begin(epoch, logs=None)``, ``on_train_batch_begin(batch, logs=None)``,
    ``on_train_batch_end(batch, logs)``, ``on_test_begin``, ``on_test_batch_begin/_end``,
    ``on_test_end(logs)``, ``on_epoch_end(epoch, logs)``, ``on_train_end(logs)``,
    ``on_predict_begin``, ``on_predict_batch_begin/_end``, ``on_predict_end``, and the aliases
    ``on_batch_begin/_end``. Each turns ``logs`` into a new dict once (``{}`` for None, sorted by key,
    scalars made Python floats: ``pythonify_logs``) and passes that same dict to every callback in
    order, so a key one callback adds is seen by the ones after it. Calls are synchronous.

    The loop ``fit`` runs::

        cbs = CallbackList(callbacks, add_history=True, add_progbar=verbose != 0, model=model,
                           verbose=verbose, epochs=epochs, steps=steps)
        cbs.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch)
            for batch in range(steps):
                cbs.on_train_batch_begin(batch)
                ...
                cbs.on_train_batch_end(batch, running_logs)
            epoch_logs = ...          # and, with validation, evaluate(..., callbacks=cbs) -> val_* keys
            cbs.on_epoch_end(epoch, epoch_logs)
        cbs.on_train_end(epoch_logs)
        return cbs.history
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None, **params):
        super().__init__()
        self.callbacks = _flatten(callbacks)
        self.history = next((cb for cb in self.callbacks if isinstance(cb, History)), None)
        self.progbar = next((cb for cb in self.callbacks if isinstance(cb, ProgbarLogger)), None)
        if self.history is None and add_history:
            self.history = History()
            self.callbacks.append(self.history)
        if self.progbar is None and add_progbar:
            self.progbar = ProgbarLogger()
            self.callbacks.append(self.progbar)
        self.set_model(model)
        self.set_params(params)

    def set_params(self, params):
        self.params = params
        if params:
            for callback in self.callbacks:
                callback.set_params(params)

    def set_model(self, model):
        if model is None:
            return
        super().set_model(model)
        if self.history is not None:
            model.history = self.history
        for callback in self.callbacks:
            callback.set_model(model)

    def _call(self, hook: str, *args, logs=None):
        # As Keras: batch hooks get ``logs`` by keyword, the others positionally (a LambdaCallback's
        # ``lambda epoch, logs: ...`` or ``lambda batch, logs=None: ...`` works either way).
        logs = pythonify_logs(logs)
        for callback in self.callbacks:
            if "batch" in hook:
                getattr(callback, hook)(*args, logs=logs)
            else:
                getattr(callback, hook)(*args, logs)

    def on_batch_begin(self, batch, logs=None):
        self._call("on_batch_begin", batch, logs=logs)

    def on_batch_end(self, batch, logs=None):
        self._call("on_batch_end", batch, logs=logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs=logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs=logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call("on_test_batch_begin", batch, logs=logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call("on_test_batch_end", batch, logs=logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call("on_predict_batch_begin", batch, logs=logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call("on_predict_batch_end", batch, logs=logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs=logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs=logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs=logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs=logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs=logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs=logs)


def _flatten(callbacks) -> list:
    if callbacks is None:
        return []
    if isinstance(callbacks, (list, tuple)):
        return [cb for item in callbacks for cb in _flatten(item)]
    if not isinstance(callbacks, Callback):
        raise TypeError(f"CallbackList: callbacks must be convscope.callbacks.Callback objects (or lists of them), "
                        f"received an object of type {type(callbacks).__name__}: {callbacks!r}")
    return [callbacks]
