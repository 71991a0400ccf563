"""Keras and ONNX: read Keras files into convscope, write convscope models as Keras and ONNX files.

    from convscope import interop
    model = interop.load_keras("model.keras")       # also legacy .h5; convscope.load_model does the same
    interop.load_keras_weights(model, "model.weights.h5")   # or model.load_weights(...)
    interop.save_keras(model, "copy.keras")           # or model.save("copy.keras"), model.save_keras(...)
    interop.save_keras_h5(model, "copy.h5")           # or model.save("copy.h5")
    interop.save_keras_weights(model, "copy.weights.h5")    # or model.save_weights(...)
    interop.export_onnx(model, "model.onnx")          # or model.export_onnx(...)

Both sides are NHWC with Keras's kernel layouts, so a Keras model and its convscope
twin hold the same arrays (see ``keras_weights``); ``onnx_export`` converts to ONNX's NCHW.
h5py and onnx are the optional ``interop`` extra, imported only when a function needs them.
"""

from .. import formats
from .keras_export import save_keras, save_keras_weights
from .keras_h5_export import save_keras_h5
from .keras_import import load_keras, load_keras_weights, load_weights
from .onnx_export import export_onnx

formats.register_loader((".keras", ".h5", ".hdf5"), load_keras)
formats.register_saver((".keras",), save_keras)
formats.register_saver((".h5", ".hdf5"), save_keras_h5)
formats.register_exporter("keras", save_keras)
formats.register_exporter("onnx", export_onnx)
formats.register_exporter("weights", save_keras_weights)
formats.register_exporter("load_weights", load_weights)

__all__ = ["export_onnx", "load_keras", "load_keras_weights", "save_keras", "save_keras_h5", "save_keras_weights"]
