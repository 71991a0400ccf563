"""Learning-rate schedules: Keras's formulas, config, validation, and optimizers driven by a schedule."""

import json
import math

import numpy as np
import pytest

import convscope
from convscope import layers, optimizers, schedules, utils
from convscope.layers.base import Parameter
from convscope.saving import load_model

S = optimizers.schedules


def test_reachable_as_in_keras():
    assert S is schedules
    assert S.ExponentialDecay is schedules.ExponentialDecay


# -- formulas, written out independently ----------------------------------------------------
@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_decay(staircase):
    lr = S.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=staircase)
    for step in range(0, 35, 3):
        exponent = step // 10 if staircase else step / 10
        assert lr(step) == pytest.approx(0.1 * 0.5**exponent, rel=1e-15)


def test_piecewise_constant_intervals_are_closed_on_the_right():
    lr = S.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [lr(s) for s in (0, 10, 11, 20, 21, 10**6)] == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]


def cosine_by_hand(step, lr0, decay_steps, alpha=0.0, target=None, warmup=0):
    if target is None:
        s = min(step, decay_steps)
        return lr0 * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * s / decay_steps)) + alpha)
    s = min(step, decay_steps + warmup)
    if s < warmup:
        return lr0 + (target - lr0) * s / warmup
    s -= warmup
    return target * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * s / decay_steps)) + alpha)


@pytest.mark.parametrize("kwargs", [
    {}, {"alpha": 0.2}, {"warmup_target": 0.5, "warmup_steps": 4}, {"warmup_target": 0.3},
    {"alpha": 0.1, "warmup_target": 0.2, "warmup_steps": 3},
])
def test_cosine_decay(kwargs):
    lr = S.CosineDecay(0.05, 10, **kwargs)
    for step in range(0, 20):
        expected = cosine_by_hand(step, 0.05, 10, kwargs.get("alpha", 0.0), kwargs.get("warmup_target"),
                                  kwargs.get("warmup_steps", 0))
        assert lr(step) == pytest.approx(expected, rel=1e-14, abs=1e-18)


def test_numbers_from_keras():
    # keras 3.15.1 (torch backend, floatx float64): keras.optimizers.schedules.X(...)(step)
    assert [S.ExponentialDecay(0.1, 10, 0.5, staircase=True)(s) for s in (0, 9, 12, 24)] == \
        pytest.approx([0.1, 0.1, 0.05, 0.025], rel=1e-15)
    warm = S.CosineDecay(0.0, 10, warmup_target=0.5, warmup_steps=4)
    assert [warm(s) for s in range(0, 18, 2)] == pytest.approx(
        [0.0, 0.25, 0.5, 0.45225424859373686, 0.32725424859373686, 0.17274575140626316,
         0.047745751406263165, 0.0, 0.0], rel=1e-13, abs=1e-17)


def test_numpy_steps_are_accepted():
    assert S.ExponentialDecay(1.0, 2, 0.5)(np.int64(2)) == 0.5
    with pytest.raises(TypeError, match=r"ExponentialDecay: the step must be a number, received 'a'"):
        S.ExponentialDecay(1.0, 2, 0.5)("a")


# -- config -----------------------------------------------------------------------------------
@pytest.mark.parametrize("schedule, config", [
    (S.ExponentialDecay(0.1, 10, 0.5),
     {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5, "staircase": False,
      "name": "ExponentialDecay"}),
    (S.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]),
     {"boundaries": [10, 20], "values": [1.0, 0.5, 0.1], "name": "PiecewiseConstant"}),
    (S.CosineDecay(0.1, 100, warmup_target=0.5, warmup_steps=10),
     {"initial_learning_rate": 0.1, "decay_steps": 100, "alpha": 0.0, "name": "CosineDecay",
      "warmup_target": 0.5, "warmup_steps": 10}),
], ids=lambda v: type(v).__name__ if isinstance(v, schedules.LearningRateSchedule) else "")
def test_config_is_keras_and_round_trips(schedule, config):
    assert schedule.get_config() == config  # the dicts keras 3.15.1 writes
    data = json.loads(json.dumps(schedules.serialize(schedule)))
    assert data == {"module": "keras.optimizers.schedules", "class_name": type(schedule).__name__,
                    "config": config, "registered_name": None}
    again = schedules.deserialize(data)
    assert again == schedule and type(schedule).from_config(config) == schedule


@pytest.mark.parametrize("make, error, message", [
    (lambda: S.ExponentialDecay(0.1, 0, 0.5), ValueError,
     r'ExponentialDecay: argument "decay_steps" must be a finite number > 0, received 0'),
    (lambda: S.ExponentialDecay("0.1", 10, 0.5), TypeError,
     r"ExponentialDecay: argument \"initial_learning_rate\" must be a number, received '0.1'"),
    (lambda: S.ExponentialDecay(0.1, 10, 0.5, staircase=1), TypeError,
     r'ExponentialDecay: argument "staircase" must be a bool, received 1'),
    (lambda: S.ExponentialDecay(0.1, 10, 0.5, name=""), TypeError,
     r'ExponentialDecay: argument "name" must be a non-empty string'),
    (lambda: S.CosineDecay(0.1, -5), ValueError,
     r'CosineDecay: argument "decay_steps" must be a finite number > 0, received -5'),
    (lambda: S.CosineDecay(0.1, 5, warmup_steps=-1), ValueError,
     r'CosineDecay: argument "warmup_steps" must be >= 0, received -1'),
    (lambda: S.CosineDecay(0.1, 5, alpha=float("nan")), ValueError,
     r'CosineDecay: argument "alpha" must be a finite number, received nan'),
    (lambda: S.PiecewiseConstantDecay([10, 20], [1.0, 0.5]), ValueError,
     r"PiecewiseConstantDecay: the length of boundaries should be 1 less than the length of values, "
     r"received boundaries=\[10, 20\] of length 2 and values=\[1.0, 0.5\] of length 2"),
    (lambda: S.PiecewiseConstantDecay([20, 10], [1.0, 0.5, 0.1]), ValueError,
     r'PiecewiseConstantDecay: argument "boundaries" must be non-decreasing, received \[20, 10\]'),
    (lambda: S.PiecewiseConstantDecay(10, [1.0, 0.5]), TypeError,
     r'PiecewiseConstantDecay: argument "boundaries" must be a list of numbers, received 10'),
    (lambda: S.PiecewiseConstantDecay([10], [1.0, None]), TypeError,
     r'PiecewiseConstantDecay: argument "values" must be a number, received None'),
])
def test_validation(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_deserialize_errors():
    with pytest.raises(ValueError, match=r"Unknown learning rate schedule 'PolynomialDecay'; known: "
                                         r"\['CosineDecay', 'ExponentialDecay', 'PiecewiseConstantDecay'\]"):
        schedules.deserialize({"class_name": "PolynomialDecay", "config": {}})
    with pytest.raises(TypeError, match=r"schedules.deserialize: expected a \{'class_name', 'config'\} dict"):
        schedules.deserialize("ExponentialDecay")
    with pytest.raises(TypeError, match=r"schedules.serialize: expected a LearningRateSchedule, received 0.1"):
        schedules.serialize(0.1)


# -- optimizers with a schedule ---------------------------------------------------------------
def param(values):
    return Parameter(np.array(values, dtype=np.float64), "w")


def test_sgd_uses_the_schedule_at_the_iteration_before_the_update():
    lr = S.PiecewiseConstantDecay([0, 1], [0.1, 0.01, 0.001])  # steps 0, 1, then 2...
    opt, p = optimizers.SGD(learning_rate=lr), param([1.0])
    expected = 1.0
    for step in range(4):
        assert opt.learning_rate == lr(step)
        p.grad = np.array([1.0])
        opt.apply([p])
        expected -= lr(step)
        assert p.value[0] == pytest.approx(expected, rel=1e-15)


def test_weight_decay_follows_the_schedule():
    lr = S.ExponentialDecay(0.1, 1, 0.5)
    opt, p = optimizers.SGD(learning_rate=lr, weight_decay=0.1), param([2.0])
    w = 2.0
    for step, g in enumerate([0.5, -1.0, 0.25]):
        p.grad = np.array([g])
        opt.apply([p])
        w = w - w * 0.1 * lr(step) - lr(step) * g
    assert p.value[0] == pytest.approx(w, rel=1e-15)


def test_sgd_with_schedules_matches_keras():
    # keras 3.15.1, floatx float64: 5 steps of SGD on [1, -2, 0.5] with the gradients below
    grads = [[0.5, -1.0, 0.25], [0.2, 0.4, -0.3], [-0.7, 0.1, 0.05], [0.3, 0.3, 0.3], [1.0, -0.2, 0.0]]
    cases = {
        "cos": optimizers.SGD(learning_rate=S.CosineDecay(0.1, 3, alpha=0.1, warmup_target=0.2, warmup_steps=2)),
        "pw": optimizers.SGD(learning_rate=S.PiecewiseConstantDecay([1, 3], [0.1, 0.05, 0.01]), weight_decay=0.1),
    }
    keras_last = {"cos": [0.9484999999999998, -2.0135, 0.4635],
                  "pw": [0.9104204232349999, -1.89830831947, 0.4723990106175]}
    for key, opt in cases.items():
        p = param([1.0, -2.0, 0.5])
        for g in grads:
            p.grad = np.array(g)
            opt.apply([p])
        np.testing.assert_allclose(p.value, keras_last[key], rtol=1e-12)


def test_learning_rate_reads_and_sets_as_in_keras():
    lr = S.ExponentialDecay(0.1, 1, 0.5)
    opt = optimizers.Adam(learning_rate=lr)
    assert opt.learning_rate == 0.1 and opt.schedule is lr
    opt.iterations = 3
    assert opt.learning_rate == pytest.approx(0.0125)
    with pytest.raises(TypeError, match=r"Adam: this optimizer was created with a LearningRateSchedule as its "
                                        r"learning_rate, hence its learning rate is not settable to 0.01"):
        opt.learning_rate = 0.01
    other = S.CosineDecay(0.2, 10)
    opt.learning_rate = other  # a schedule may replace a schedule
    assert opt.schedule is other
    plain = optimizers.SGD(learning_rate=0.1)
    plain.learning_rate = lr  # and a float
    assert plain.schedule is lr and plain.learning_rate == 0.1
    assert optimizers.SGD().schedule is None


def test_a_schedule_may_reach_zero():
    opt, p = optimizers.SGD(learning_rate=S.CosineDecay(0.1, 1)), param([1.0])
    for _ in range(3):
        p.grad = np.array([1.0])
        opt.apply([p])
    assert opt.learning_rate == 0.0 and p.value[0] == pytest.approx(0.9)


def test_optimizer_config_serializes_the_schedule_as_keras():
    lr = S.ExponentialDecay(0.1, 10, 0.5)
    config = optimizers.Adam(learning_rate=lr).get_config()
    assert config["learning_rate"] == {
        "module": "keras.optimizers.schedules", "class_name": "ExponentialDecay", "registered_name": None,
        "config": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5, "staircase": False,
                   "name": "ExponentialDecay"}}
    again = optimizers.get(json.loads(json.dumps(optimizers.serialize(optimizers.Adam(learning_rate=lr)))))
    assert type(again) is optimizers.Adam and again.schedule == lr and again.get_config() == config


def test_reads_a_keras_optimizer_config_with_a_schedule():
    keras_config = {"module": "keras.src.backend.torch.optimizers.torch_adam", "class_name": "Adam",
                    "registered_name": "Adam", "config": {
                        "name": "adam", "learning_rate": {
                            "module": "keras.optimizers.schedules", "class_name": "ExponentialDecay",
                            "config": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5,
                                       "staircase": False, "name": "ExponentialDecay"}, "registered_name": None},
                        "weight_decay": None, "clipnorm": None, "global_clipnorm": None, "clipvalue": None,
                        "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                        "loss_scale_factor": None, "gradient_accumulation_steps": None,
                        "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False}}
    opt = optimizers.get(keras_config)
    assert opt.schedule == S.ExponentialDecay(0.1, 10, 0.5)


def test_state_keeps_iterations_and_leaves_the_schedule_to_the_config():
    lr = S.CosineDecay(0.05, 8, warmup_target=0.1, warmup_steps=2)
    make = lambda: optimizers.Nadam(learning_rate=lr)  # noqa: E731
    grads = [np.array([0.3, -0.5]) * (k + 1) for k in range(8)]

    straight, p = make(), param([1.0, 2.0])
    for g in grads:
        p.grad = g
        straight.apply([p])

    first, q = make(), param([1.0, 2.0])
    for g in grads[:4]:
        q.grad = g
        first.apply([q])
    state = first.get_state()
    assert "learning_rate" not in state and int(state["iterations"]) == 4
    second = optimizers.get(json.loads(json.dumps(optimizers.serialize(first))))
    second.set_state(state, [q])
    assert second.learning_rate == lr(4)
    for g in grads[4:]:
        q.grad = g
        second.apply([q])
    np.testing.assert_array_equal(p.value, q.value)


def test_set_state_of_a_float_rate_into_a_schedule_is_refused():
    opt = optimizers.SGD(learning_rate=0.1)
    with pytest.raises(ValueError, match=r"SGD.set_state: expected entries \['iterations'\] .* "
                                         r"unexpected \['learning_rate'\]"):
        optimizers.SGD(learning_rate=S.ExponentialDecay(0.1, 1, 0.5)).set_state(opt.get_state(), [param([1.0])])


def test_model_file_round_trips_a_schedule(tmp_path):
    layers.clear_session()
    utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)).astype(np.float32), rng.normal(size=(16, 2)).astype(np.float32)
    model = convscope.Sequential([convscope.Input(shape=(4,)), layers.Dense(2)])
    model.compile(optimizer=optimizers.Adam(learning_rate=S.ExponentialDecay(0.05, 3, 0.5, staircase=True)),
                  loss="mse")
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    model.save(tmp_path / "m.convscope")
    loaded = load_model(tmp_path / "m.convscope")
    assert loaded.optimizer.schedule == model.optimizer.schedule
    assert loaded.optimizer.iterations == model.optimizer.iterations == 4
    assert loaded.optimizer.learning_rate == model.optimizer.learning_rate == pytest.approx(0.025)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
