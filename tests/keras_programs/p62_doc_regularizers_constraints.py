"""Source: github.com/keras-team/keras, the usage examples in two docstrings, written out as a script:
keras/src/regularizers/regularizers.py (`keras.regularizers.Regularizer`: a Dense layer with an L1 kernel and an
L2 activity regularizer and the sum of its layer.losses, calling an L2 regularizer directly, a regularizer
written as a function, a Regularizer subclass with get_config) and keras/src/constraints/constraints.py
(`keras.constraints.Constraint`: a NonNegative constraint subclass applied to a tensor and passed to a Dense
layer), the examples shown on keras.io/api/layers/regularizers and keras.io/api/layers/constraints.

Imports changed: the doctests assume `import keras`, `from keras import ops`, `from keras.layers import Dense`,
`from keras.regularizers import L1, L2, Regularizer`; here `import convscope as keras` and the same names from
convscope. Each doctest output line (`>>> ops.sum(layer.losses)` printing 5.25, `>>> regularizer(tensor)`,
`>>> layer.losses`, `>>> NonNegative()(weight)`) is assigned to a name (total_penalty, direct_penalty,
function_penalty, subclass_penalty, projected) so that the test can compare the value; `layer.losses`, a list
of one penalty, is summed with ops.sum like the first example.
Trimmed for run time: nothing.
"""
import convscope as keras
from convscope import ops
from convscope.layers import Dense
from convscope.regularizers import L1, L2, Regularizer

layer = Dense(
    5, input_dim=5,
    kernel_initializer='ones',
    kernel_regularizer=L1(0.01),
    activity_regularizer=L2(0.01))
tensor = ops.ones(shape=(5, 5)) * 2.0
out = layer(tensor)

# The kernel regularization term is 0.25
# The activity regularization term (after dividing by batch size of 5)
# is 5.0
total_penalty = ops.sum(layer.losses)  # 5.25

regularizer = L2(2.)
tensor = ops.ones(shape=(5, 5))
direct_penalty = regularizer(tensor)  # 50.0


def l1_reg(weight_matrix):
    return 0.01 * ops.sum(ops.absolute(weight_matrix))


layer = Dense(5, input_dim=5,
    kernel_initializer='ones', kernel_regularizer=l1_reg)
tensor = ops.ones(shape=(5, 5))
out = layer(tensor)
function_penalty = ops.sum(layer.losses)  # 0.25


class L2Regularizer(Regularizer):
  def __init__(self, l2=0.):
    self.l2 = l2

  def __call__(self, x):
    return self.l2 * ops.sum(ops.square(x))

  def get_config(self):
    return {'l2': float(self.l2)}


layer = Dense(
  5, input_dim=5, kernel_initializer='ones',
  kernel_regularizer=L2Regularizer(l2=0.5))

tensor = ops.ones(shape=(5, 5))
out = layer(tensor)
subclass_penalty = ops.sum(layer.losses)  # 12.5


class NonNegative(keras.constraints.Constraint):

 def __call__(self, w):
   return w * ops.cast(ops.greater_equal(w, 0.), dtype=w.dtype)


weight = ops.convert_to_tensor((-1.0, 1.0))
projected = list(NonNegative()(weight))  # [0., 1.]

keras.layers.Dense(4, kernel_constraint=NonNegative())
