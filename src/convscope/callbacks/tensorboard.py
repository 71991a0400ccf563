"""``TensorBoard``: event files for the TensorBoard app, with Keras's folders and tag names.

Written with tensorboardX (``pip install 'convscope[tensorboard]'``), imported only when a
``TensorBoard`` callback is created.
"""

from __future__ import annotations

import os
import time

from .. import backend
from .base import Callback, check_count

EXTRA = "pip install 'convscope[tensorboard]'"


def _summary_writer():
    try:
        from tensorboardX import SummaryWriter
    except ImportError as e:
        raise ImportError(f"the TensorBoard callback writes its event files with tensorboardX, which is not "
                          f"installed: {EXTRA}") from e
    return SummaryWriter


class TensorBoard(Callback):
    """Log metrics, learning rate and weight histograms for TensorBoard (``tensorboard --logdir logs``).

    ``TensorBoard(log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
    write_steps_per_second=False, update_freq="epoch", profile_batch=0, embeddings_freq=0,
    embeddings_metadata=None)``, Keras 3's arguments; event files go to ``log_dir/train`` and
    ``log_dir/validation``, with Keras's tags:

    * each epoch (step = epoch, from 0): ``epoch_<key>`` for every training log key (``epoch_loss``,
      ``epoch_accuracy``), ``epoch_learning_rate`` and, with ``write_steps_per_second``,
      ``epoch_steps_per_second``, under ``train``; the ``val_*`` keys, without the prefix, under
      ``validation``;
    * ``update_freq``: ``"epoch"``; or an int N (``"batch"`` is 1): also ``batch_<key>`` of the running
      logs every N training batches, the step counting batches across the whole ``fit`` from 1 (and
      ``batch_steps_per_second`` with ``write_steps_per_second``);
    * at the end of each evaluation (``evaluate``, and ``fit``'s validation):
      ``evaluation_<key>_vs_iterations`` under ``validation``, the step being the optimizer's iterations;
    * ``histogram_freq`` N > 0: every N epochs, a histogram of each weight, ``<layer>/<weight>/histogram``,
      under ``train``; with ``write_images``, each weight as an image too, ``<layer>/<weight>/image``
      (Keras's layout: a bias n x 1, a dense kernel with its longer side across, one image per output
      filter of a single-channel convolution kernel).

    ``write_graph`` is accepted and writes nothing (Keras 3 marks it "not supported at this time" and needs
    TensorFlow for it); ``profile_batch`` and ``embeddings_freq`` other than 0 are refused (no profiler, no
    embedding projector in convscope). The train writer exists only once something is written to it.
    """

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0, embeddings_freq=0,
                 embeddings_metadata=None):
        super().__init__()
        self._writer_class = _summary_writer()
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (isinstance(update_freq, bool) or not isinstance(update_freq, int)
                                       or update_freq < 1):
            raise ValueError(f'TensorBoard: argument "update_freq" must be "epoch", "batch" or a positive number of '
                             f"batches, received {update_freq!r}")
        if profile_batch:
            raise ValueError("TensorBoard: profiling is not available in convscope. "
                             f"Received: profile_batch={profile_batch!r} (must be 0)")
        if embeddings_freq or embeddings_metadata is not None:
            raise ValueError("TensorBoard: convscope has no embedding projector; embeddings_freq must be 0 and "
                             f"embeddings_metadata None, received {embeddings_freq!r} and {embeddings_metadata!r}")
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = check_count("TensorBoard", "histogram_freq", histogram_freq)
        self.write_graph, self.write_images = write_graph, write_images
        self.write_steps_per_second, self.update_freq = write_steps_per_second, update_freq
        self._train_dir = os.path.join(self.log_dir, "train")
        self._val_dir = os.path.join(self.log_dir, "validation")
        self._writers: dict = {}
        self._global_train_batch = 0
        self._batch_start_time = self._epoch_start_time = 0.0
        self._epoch_start_iterations = 0

    def _writer(self, which: str):
        if which not in self._writers:
            self._writers[which] = self._writer_class(self._train_dir if which == "train" else self._val_dir)
        return self._writers[which]

    def on_train_begin(self, logs=None):
        self._global_train_batch = 0

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def on_test_end(self, logs=None):
        optimizer = self.model.optimizer
        if optimizer is None:
            return
        writer = self._writer("validation")
        for name, value in (logs or {}).items():
            writer.add_scalar(f"evaluation_{name}_vs_iterations", value, optimizer.iterations)
        writer.flush()

    def on_train_batch_begin(self, batch, logs=None):
        self._global_train_batch += 1
        if self.write_steps_per_second:
            self._batch_start_time = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch" or self._global_train_batch % self.update_freq:
            return
        writer, step = self._writer("train"), self._global_train_batch
        if self.write_steps_per_second:
            writer.add_scalar("batch_steps_per_second", 1.0 / (time.perf_counter() - self._batch_start_time), step)
        for name, value in (logs or {}).items():
            writer.add_scalar(f"batch_{name}", value, step)

    def on_epoch_begin(self, epoch, logs=None):
        if self.write_steps_per_second:
            self._epoch_start_iterations = self.model.optimizer.iterations
            self._epoch_start_time = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self._log_epoch_metrics(epoch, logs or {})
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_weights(epoch)

    def _log_epoch_metrics(self, epoch, logs) -> None:
        if not logs:
            return
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val = {k.removeprefix("val_"): v for k, v in logs.items() if k.startswith("val_")}
        if self.model.optimizer is not None:
            train["learning_rate"] = float(self.model.optimizer.learning_rate)
        if self.write_steps_per_second:
            steps = self.model.optimizer.iterations - self._epoch_start_iterations
            train["steps_per_second"] = steps / (time.perf_counter() - self._epoch_start_time)
        for which, values in (("train", train), ("validation", val)):
            if values:
                writer = self._writer(which)
                for name, value in values.items():
                    writer.add_scalar(f"epoch_{name}", value, epoch)
                writer.flush()

    def _log_weights(self, epoch) -> None:
        writer = self._writer("train")
        for layer in self.model.layers:
            for weight in layer.weights:
                name = weight.path.replace(":", "_")
                writer.add_histogram(f"{name}/histogram", weight.value, epoch)
                if self.write_images:
                    image = weight_image(weight.value)
                    if image is not None:
                        writer.add_images(f"{name}/image", image, epoch, dataformats="NHWC")
        writer.flush()


def weight_image(value):
    """A weight as TensorBoard images ``(n, height, width, channels)``, laid out as Keras does, or None when
    the result is not an image stack with 1, 3 or 4 channels (Keras then writes none).

    * ``(n,)`` (a bias): one image n x 1;
    * ``(a, b)`` (a dense kernel): one image with the longer side across, ``(min, max)``;
    * ``(h, w, c)`` after dropping size-1 axes (a kernel with one input channel): c images h x w;
    * ``(h, w, i, o)``: kept as it is, h images w x i of o channels (so only o in 1, 3, 4 is written).
    """
    xp = backend.xp
    image = xp.squeeze(value)
    if image.ndim == 1:
        image = image.reshape(1, image.shape[0], 1, 1)
    elif image.ndim == 2:
        if image.shape[0] > image.shape[1]:
            image = image.T
        image = image.reshape(1, *image.shape, 1)
    elif image.ndim == 3:
        image = xp.transpose(image, (2, 0, 1))[..., None]
    if image.ndim == 4 and image.shape[-1] in (1, 3, 4):
        return image
    return None
