"""Optimizers: Keras 3's first steps by hand, clipping, convergence, checkpoint resume, validation, config."""

import json
import math

import numpy as np
import pytest
import torch

from convscope import optimizers
from convscope.layers.base import Parameter


def param(values, dtype=np.float64):
    return Parameter(np.array(values, dtype=dtype), "w")


def step(opt, p, grad):
    p.grad = np.array(grad, dtype=p.value.dtype)
    opt.apply([p])


# -- first steps of the Keras formulas, by hand --------------------------------------
def test_sgd_plain():
    p = param([1.0, 2.0])
    step(optimizers.SGD(learning_rate=0.1), p, [0.5, -1.0])
    np.testing.assert_allclose(p.value, [1.0 - 0.05, 2.0 + 0.1])


def test_sgd_momentum_two_steps():
    p, opt = param([1.0]), optimizers.SGD(learning_rate=0.1, momentum=0.9)
    step(opt, p, [1.0])  # m = -0.1, w = 0.9
    step(opt, p, [2.0])  # m = 0.9 * -0.1 - 0.2 = -0.29, w = 0.61
    np.testing.assert_allclose(p.value, [0.61])
    np.testing.assert_allclose(opt.get_state()["momentum/0"], [-0.29])


def test_sgd_nesterov_two_steps():
    p, opt = param([1.0]), optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
    step(opt, p, [1.0])  # m = -0.1, w = 1 + 0.9 * -0.1 - 0.1 = 0.81
    np.testing.assert_allclose(p.value, [0.81])
    step(opt, p, [2.0])  # m = -0.29, w = 0.81 + 0.9 * -0.29 - 0.2 = 0.349
    np.testing.assert_allclose(p.value, [0.349])


def adam_by_hand(w, grads, lr=0.001, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False, wd=0.0):
    """Keras 3's Adam written out for one scalar weight."""
    m = v = v_hat = 0.0
    for t, g in enumerate(grads, start=1):
        w -= w * wd * lr
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        m += (g - m) * (1 - b1)
        v += (g * g - v) * (1 - b2)
        v_hat = max(v_hat, v)
        w -= alpha * m / (math.sqrt(v_hat if amsgrad else v) + eps)
    return w


def test_adam_two_steps():
    p, opt = param([1.0, -2.0]), optimizers.Adam(learning_rate=0.01)
    step(opt, p, [0.1, -0.3])
    # The first Adam step moves every weight by almost exactly the learning rate.
    np.testing.assert_allclose(p.value, [0.99, -1.99], rtol=1e-6)
    step(opt, p, [0.2, 0.4])
    expected = [adam_by_hand(1.0, [0.1, 0.2], lr=0.01), adam_by_hand(-2.0, [-0.3, 0.4], lr=0.01)]
    np.testing.assert_allclose(p.value, expected, rtol=1e-12)
    assert opt.iterations == 2


def test_adam_first_step_numbers():
    # t = 1: m = 0.1 g, v = 0.001 g^2, alpha = lr sqrt(0.001) / 0.1; for g = 0.5, lr = 0.1:
    # w = 1 - alpha * 0.05 / (sqrt(0.00025) + 1e-7)
    p = param([1.0])
    step(optimizers.Adam(learning_rate=0.1), p, [0.5])
    alpha = 0.1 * math.sqrt(0.001) / 0.1
    assert p.value[0] == pytest.approx(1 - alpha * 0.05 / (math.sqrt(0.00025) + 1e-7), rel=1e-14)


def test_amsgrad_keeps_the_largest_velocity():
    grads = [1.0, 0.01, 0.01]
    p, opt = param([0.5]), optimizers.Adam(learning_rate=0.01, amsgrad=True)
    for g in grads:
        step(opt, p, [g])
    assert p.value[0] == pytest.approx(adam_by_hand(0.5, grads, lr=0.01, amsgrad=True), rel=1e-12)
    assert p.value[0] != pytest.approx(adam_by_hand(0.5, grads, lr=0.01), rel=1e-6)
    state = opt.get_state()
    assert state["velocity_hat/0"][0] > state["velocity/0"][0]


def test_adamw_decays_before_the_adam_step():
    p, opt = param([2.0]), optimizers.AdamW(learning_rate=0.1, weight_decay=0.5)
    step(opt, p, [0.0])  # zero gradient: only the decay 2 - 2 * 0.5 * 0.1
    assert p.value[0] == pytest.approx(1.9, rel=1e-15)
    step(opt, p, [0.3])
    assert p.value[0] == pytest.approx(adam_by_hand(2.0, [0.0, 0.3], lr=0.1, wd=0.5), rel=1e-12)


def test_rmsprop_keras_docstring_example():
    # Keras: var = 10, loss = var^2 / 2 (gradient var), RMSprop(0.1) -> 9.683772
    p = param([10.0])
    step(optimizers.RMSprop(learning_rate=0.1), p, [10.0])
    assert p.value[0] == pytest.approx(9.683772, abs=1e-6)


def test_rmsprop_centered_with_momentum_two_steps():
    p, opt = param([1.0]), optimizers.RMSprop(learning_rate=0.1, rho=0.5, momentum=0.5, centered=True, epsilon=0.01)
    w, v, a, m = 1.0, 0.0, 0.0, 0.0
    for g in (1.0, -2.0):
        step(opt, p, [g])
        v = 0.5 * v + 0.5 * g * g
        a = 0.5 * a + 0.5 * g
        m = 0.5 * m + 0.1 * g / math.sqrt(v - a * a + 0.01)
        w -= m
    assert p.value[0] == pytest.approx(w, rel=1e-14)


def test_adagrad_two_steps():
    p, opt = param([1.0]), optimizers.Adagrad(learning_rate=0.1)
    w, acc = 1.0, 0.1
    for g in (0.5, -1.0):
        step(opt, p, [g])
        acc += g * g
        w -= 0.1 * g / math.sqrt(acc + 1e-7)
    assert p.value[0] == pytest.approx(w, rel=1e-14)


def test_weight_decay_works_for_every_optimizer_as_in_keras():
    p = param([2.0])
    step(optimizers.SGD(learning_rate=0.1, weight_decay=0.5), p, [1.0])
    assert p.value[0] == pytest.approx(2.0 - 2.0 * 0.05 - 0.1)


# -- Nadam, Adadelta, Adamax: Keras 3's rules written out, PyTorch, Keras's numbers --------------------
GRADS = [[0.5, -1.0, 0.25], [0.2, 0.4, -0.3], [-0.7, 0.1, 0.05], [0.3, 0.3, 0.3], [1.0, -0.2, 0.0]]
START = [1.0, -2.0, 0.5]


def nadam_by_hand(w, grads, lr=0.001, b1=0.9, b2=0.999, eps=1e-7):
    m = v = 0.0
    product = 1.0
    for t, g in enumerate(grads, start=1):
        mu, mu_next = b1 * (1 - 0.5 * 0.96**t), b1 * (1 - 0.5 * 0.96 ** (t + 1))
        product *= mu
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = mu_next * m / (1 - product * mu_next) + (1 - mu) * g / (1 - product)
        w -= lr * m_hat / (math.sqrt(v / (1 - b2**t)) + eps)
    return w


def adadelta_by_hand(w, grads, lr=0.001, rho=0.95, eps=1e-7):
    acc_g = acc_d = 0.0
    for g in grads:
        acc_g = rho * acc_g + (1 - rho) * g * g
        delta = -math.sqrt(acc_d + eps) / math.sqrt(acc_g + eps) * g
        acc_d = rho * acc_d + (1 - rho) * delta * delta
        w += lr * delta
    return w


def adamax_by_hand(w, grads, lr=0.001, b1=0.9, b2=0.999, eps=1e-7):
    m = u = 0.0
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        u = max(b2 * u, abs(g))
        w -= lr / (1 - b1**t) * m / (u + eps)
    return w


BY_HAND = [
    (lambda: optimizers.Nadam(learning_rate=0.1), lambda w, g: nadam_by_hand(w, g, lr=0.1)),
    (lambda: optimizers.Nadam(learning_rate=0.05, beta_1=0.8, beta_2=0.9, epsilon=1e-3),
     lambda w, g: nadam_by_hand(w, g, lr=0.05, b1=0.8, b2=0.9, eps=1e-3)),
    (lambda: optimizers.Adadelta(learning_rate=1.0), lambda w, g: adadelta_by_hand(w, g, lr=1.0)),
    (lambda: optimizers.Adadelta(rho=0.5, epsilon=1e-2), lambda w, g: adadelta_by_hand(w, g, rho=0.5, eps=1e-2)),
    (lambda: optimizers.Adamax(learning_rate=0.1), lambda w, g: adamax_by_hand(w, g, lr=0.1)),
    (lambda: optimizers.Adamax(beta_1=0.5, beta_2=0.7, epsilon=0.1),
     lambda w, g: adamax_by_hand(w, g, b1=0.5, b2=0.7, eps=0.1)),
]


@pytest.mark.parametrize("make, by_hand", BY_HAND, ids=lambda f: type(f()).__name__ if f.__code__.co_argcount == 0
                         else "")
def test_new_optimizers_follow_the_keras_rule(make, by_hand):
    opt, p = make(), param(START)
    for k, g in enumerate(GRADS, start=1):
        step(opt, p, g)
        expected = [by_hand(w, [grads[i] for grads in GRADS[:k]]) for i, w in enumerate(START)]
        np.testing.assert_allclose(p.value, expected, rtol=1e-13, atol=1e-15)


def test_new_optimizers_match_keras_numbers():
    # keras 3.15.1, torch backend, floatx float64: the weights after the 5 steps of GRADS from START
    keras_last = {
        "nadam": (optimizers.Nadam(learning_rate=0.1), [0.8026746400489148, -1.9369087620191323, 0.3807802042621204]),
        "adadelta": (optimizers.Adadelta(learning_rate=1.0),
                     [0.9965285754735593, -1.9997363742401608, 0.49824004478950895]),
        "adamax": (optimizers.Adamax(learning_rate=0.1), [0.8006638515215251, -1.8550449459132126, 0.36691649630956086]),
        "adamax_exponential_decay": (
            optimizers.Adamax(learning_rate=optimizers.schedules.ExponentialDecay(0.1, 2, 0.5)),
            [0.8445283822871271, -1.8734395259751058, 0.39542932177493656]),
    }
    for opt, expected in keras_last.values():
        p = param(START)
        for g in GRADS:
            step(opt, p, g)
        np.testing.assert_allclose(p.value, expected, rtol=1e-14)


def torch_run(make_torch, steps=GRADS):
    # torch keeps scalar state (NAdam's mu_product, the step) in the default dtype: float64 for an exact match
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        w = torch.tensor(START, dtype=torch.float64, requires_grad=True)
        opt = make_torch([w])
        for g in steps:
            w.grad = torch.tensor(g, dtype=torch.float64)
            opt.step()
    finally:
        torch.set_default_dtype(default)
    return w.detach().numpy()


def ours_run(opt, steps=GRADS):
    p = param(START)
    for g in steps:
        step(opt, p, g)
    return p.value


def test_nadam_is_torch_nadam_with_momentum_decay_one():
    # torch's mu_t = beta_1 (1 - 0.5 * 0.96^(t * momentum_decay)); Keras's is momentum_decay = 1. Eps defaults differ.
    ours = ours_run(optimizers.Nadam(learning_rate=0.1, beta_1=0.8, beta_2=0.95, epsilon=1e-7))
    theirs = torch_run(lambda w: torch.optim.NAdam(w, lr=0.1, betas=(0.8, 0.95), eps=1e-7, momentum_decay=1.0))
    np.testing.assert_allclose(ours, theirs, rtol=1e-13)
    with_torch_default = torch_run(lambda w: torch.optim.NAdam(w, lr=0.1, betas=(0.8, 0.95), eps=1e-7))
    assert np.abs(ours - with_torch_default).max() > 1e-3


def test_adadelta_is_torch_adadelta():
    ours = ours_run(optimizers.Adadelta(learning_rate=0.5, rho=0.8, epsilon=1e-3))
    theirs = torch_run(lambda w: torch.optim.Adadelta(w, lr=0.5, rho=0.8, eps=1e-3))
    np.testing.assert_allclose(ours, theirs, rtol=1e-13)


def test_adamax_is_torch_adamax_up_to_where_epsilon_goes():
    # torch: u = max(beta_2 u, |g| + eps) and no eps in the denominator; Keras: u + eps in the denominator.
    # epsilon = 1e-300 vanishes next to every u here, so both are the same rule with eps = 0.
    steps = GRADS[:4]  # no zero gradient: with eps = 0 a zero u would divide 0 by 0 in torch
    ours = ours_run(optimizers.Adamax(learning_rate=0.1, beta_1=0.7, beta_2=0.9, epsilon=1e-300), steps)
    theirs = torch_run(lambda w: torch.optim.Adamax(w, lr=0.1, betas=(0.7, 0.9), eps=0.0), steps)
    np.testing.assert_allclose(ours, theirs, rtol=1e-14)
    # with a real epsilon the two placements differ, slightly: both damp small norms by about eps
    ours = ours_run(optimizers.Adamax(learning_rate=0.1, epsilon=0.01), steps)
    theirs = torch_run(lambda w: torch.optim.Adamax(w, lr=0.1, eps=0.01), steps)
    assert 1e-7 < np.abs(ours - theirs).max() < 1e-4


def test_nadam_keeps_its_momentum_product_as_state():
    opt, p = optimizers.Nadam(), param([1.0])
    assert opt.get_state().keys() == {"iterations", "learning_rate", "u_product"} and opt.u_product == 1.0
    step(opt, p, [1.0])
    step(opt, p, [1.0])
    mu = [0.9 * (1 - 0.5 * 0.96**t) for t in (1, 2)]
    assert float(opt.get_state()["u_product"]) == pytest.approx(mu[0] * mu[1], rel=1e-15)


def test_adamax_and_adadelta_slots_are_named_as_in_keras():
    p = param([1.0])
    for opt, slots in ((optimizers.Adamax(), ["momentum/0", "norm/0"]),
                       (optimizers.Adadelta(), ["accumulated_grad/0", "accumulated_delta_var/0"])):
        step(opt, p, [0.5])
        assert list(opt.get_state()) == ["iterations", "learning_rate"] + slots


# -- clipping -----------------------------------------------------------------------
def test_clipnorm_is_per_parameter():
    a, b = param([3.0, 4.0]), param([0.3, 0.4])
    a.grad, b.grad = a.value.copy(), b.value.copy()
    optimizers.SGD(learning_rate=1.0, clipnorm=1.0).apply([a, b])
    np.testing.assert_allclose(a.value, [3.0 - 0.6, 4.0 - 0.8])
    np.testing.assert_allclose(b.value, [0.0, 0.0], atol=1e-15)  # norm 0.5 < 1: unclipped


def test_global_clipnorm_scales_all_gradients_together():
    a, b = param([3.0]), param([4.0])
    a.grad, b.grad = np.array([3.0]), np.array([4.0])
    optimizers.SGD(learning_rate=1.0, global_clipnorm=1.0).apply([a, b])
    np.testing.assert_allclose([a.value[0], b.value[0]], [3.0 - 0.6, 4.0 - 0.8])


def test_clipvalue_is_elementwise_and_leaves_grad_alone():
    p = param([0.0, 0.0, 0.0])
    p.grad = np.array([3.0, -0.2, -7.0])
    optimizers.SGD(learning_rate=1.0, clipvalue=0.5).apply([p])
    np.testing.assert_allclose(p.value, [-0.5, 0.2, 0.5])
    np.testing.assert_array_equal(p.grad, [3.0, -0.2, -7.0])


# -- convergence --------------------------------------------------------------------
CENTER = np.array([1.0, -2.0, 0.5])
CURVATURE = np.array([1.0, 3.0, 0.5])


@pytest.mark.parametrize("opt", [
    optimizers.SGD(learning_rate=0.3),
    optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
    optimizers.Adam(learning_rate=0.05),
    optimizers.Adam(learning_rate=0.05, amsgrad=True),
    optimizers.AdamW(learning_rate=0.05, weight_decay=1e-4),
    optimizers.RMSprop(learning_rate=0.01, momentum=0.5),
    optimizers.Adagrad(learning_rate=0.5),
    optimizers.Nadam(learning_rate=0.05),
    optimizers.Adadelta(learning_rate=5.0, rho=0.9, epsilon=1e-4),
    optimizers.Adamax(learning_rate=0.05),
], ids=lambda o: o.name + str(o.get_config().get("momentum", "")))
def test_converges_on_a_quadratic(opt):
    # f(w) = sum(CURVATURE * (w - CENTER)^2) / 2, gradient CURVATURE * (w - CENTER)
    p = param(np.zeros(3))
    for _ in range(1000):
        p.grad = CURVATURE * (p.value - CENTER)
        opt.apply([p])
    np.testing.assert_allclose(p.value, CENTER, atol=0.02)


# -- slots and checkpoint state --------------------------------------------------------
def test_slots_are_created_in_order_with_the_parameter_dtype():
    a = Parameter(np.ones((2, 3), np.float32), "a")
    b = Parameter(np.ones(3, np.float32), "b")
    opt = optimizers.Adam()
    assert opt.get_state().keys() == {"iterations", "learning_rate"}
    opt.apply([a, b])
    state = opt.get_state()
    assert list(state) == ["iterations", "learning_rate", "momentum/0", "velocity/0", "momentum/1", "velocity/1"]
    assert state["momentum/0"].shape == (2, 3) and state["velocity/1"].dtype == np.float32
    assert a.value.dtype == np.float32
    assert int(state["iterations"]) == 1


RESUMABLE = [
    optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True, clipnorm=1.0),
    optimizers.Adam(learning_rate=0.01),
    optimizers.Adam(learning_rate=0.01, amsgrad=True, global_clipnorm=2.0),
    optimizers.AdamW(learning_rate=0.01, weight_decay=0.1),
    optimizers.RMSprop(learning_rate=0.01, momentum=0.9, centered=True, clipvalue=0.5),
    optimizers.Adagrad(learning_rate=0.1),
    optimizers.Nadam(learning_rate=0.01, clipnorm=1.0),
    optimizers.Adadelta(learning_rate=1.0),
    optimizers.Adamax(learning_rate=0.01, weight_decay=0.01),
    optimizers.Nadam(learning_rate=optimizers.schedules.ExponentialDecay(0.01, 3, 0.5), name="nadam_decay"),
]


def train(opt, params, steps, start=0):
    for k in range(start, start + steps):
        for i, p in enumerate(params):
            # gradients that depend on the weights and the step, so any lost state shows
            p.grad = (p.value * (i + 1) - np.sin(k + p.value)).astype(np.float32)
        opt.apply(params)


def fresh_params():
    rng = np.random.default_rng(7)
    return [Parameter(rng.normal(size=(3, 4)).astype(np.float32), "kernel"),
            Parameter(rng.normal(size=4).astype(np.float32), "bias")]


@pytest.mark.parametrize("opt", RESUMABLE, ids=lambda o: o.name)
def test_resume_from_state_is_bit_identical(opt):
    config = json.loads(json.dumps(opt.get_config()))
    straight = fresh_params()
    train(type(opt).from_config(config), straight, 10)

    resumed = fresh_params()
    first = type(opt).from_config(config)
    train(first, resumed, 5)
    state = {k: v.copy() for k, v in first.get_state().items()}
    second = type(opt).from_config(config)
    second.set_state(state, resumed)
    train(second, resumed, 5, start=5)

    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.value, b.value)
    assert second.iterations == 10


def test_get_state_returns_copies():
    p, opt = param([1.0]), optimizers.SGD(momentum=0.5)
    step(opt, p, [1.0])
    state = opt.get_state()
    step(opt, p, [1.0])
    assert state["momentum/0"][0] == pytest.approx(-0.01)


def test_set_state_restores_the_learning_rate():
    opt = optimizers.Adam(learning_rate=0.1)
    opt.learning_rate = 0.02  # as a callback would
    other = optimizers.Adam()
    other.set_state(opt.get_state(), [param([1.0])])
    assert other.learning_rate == 0.02


def test_set_state_accepts_a_state_saved_before_the_first_step():
    opt, p = optimizers.Adam(), param([1.0])
    opt.set_state(optimizers.Adam().get_state(), [p])
    step(opt, p, [1.0])
    assert opt.iterations == 1


def built_adam_state(shape=(2,)):
    opt = optimizers.Adam()
    step(opt, param(np.ones(shape)), np.ones(shape))
    return opt.get_state()


def test_set_state_rejects_missing_and_unexpected_entries():
    state = built_adam_state()
    del state["velocity/0"]
    state["m/0"] = np.zeros(2)
    with pytest.raises(ValueError, match=r"Adam.set_state: expected entries .* for 1 parameters, "
                                         r"missing \['velocity/0'\], unexpected \['m/0'\]"):
        optimizers.Adam().set_state(state, [param([1.0, 2.0])])


def test_set_state_rejects_a_different_parameter_count():
    with pytest.raises(ValueError, match=r"missing \['momentum/1', 'velocity/1'\]"):
        optimizers.Adam().set_state(built_adam_state(), [param([1.0, 2.0]), param([3.0])])


def test_set_state_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r'Adam.set_state: "momentum/0" must have the shape \(3,\) of parameter w, '
                                         r"received \(2,\)"):
        optimizers.Adam().set_state(built_adam_state(), [param([1.0, 2.0, 3.0])])


def test_set_state_rejects_bad_iterations():
    state = built_adam_state()
    state["iterations"] = np.array(-1)
    with pytest.raises(ValueError, match=r'Adam.set_state: "iterations" must be an integer scalar >= 0'):
        optimizers.Adam().set_state(state, [param([1.0, 2.0])])


def test_apply_rejects_other_parameters():
    opt = optimizers.Adam()
    step(opt, param([1.0]), [1.0])
    with pytest.raises(ValueError, match=r"Adam: expected the 1 parameters it was first applied to, received 2"):
        opt.apply([param([1.0]), param([2.0])])
    with pytest.raises(ValueError, match=r"Adam: parameter 0 \(w\) expected shape \(1,\), received \(2,\)"):
        opt.apply([param([1.0, 2.0])])


# -- validation ---------------------------------------------------------------------
@pytest.mark.parametrize("make, error, message", [
    (lambda: optimizers.Adam(learning_rate=0), ValueError,
     r'Adam: argument "learning_rate" must be in \(0, inf\), received 0'),
    (lambda: optimizers.SGD(learning_rate="fast"), TypeError, r'SGD: argument "learning_rate" must be a number'),
    (lambda: optimizers.Adam(beta_1=1.0), ValueError, r'Adam: argument "beta_1" must be in \[0, 1\), received 1.0'),
    (lambda: optimizers.AdamW(beta_2=-0.1), ValueError, r'AdamW: argument "beta_2" must be in \[0, 1\), received -0.1'),
    (lambda: optimizers.Adam(epsilon=0.0), ValueError, r'Adam: argument "epsilon" must be in \(0, inf\), received 0.0'),
    (lambda: optimizers.Adam(amsgrad=1), TypeError, r'Adam: argument "amsgrad" must be a bool, received 1'),
    (lambda: optimizers.SGD(momentum=1.5), ValueError, r'SGD: argument "momentum" must be in \[0, 1\], received 1.5'),
    (lambda: optimizers.SGD(nesterov="yes"), TypeError, r'SGD: argument "nesterov" must be a bool'),
    (lambda: optimizers.RMSprop(rho=1.0), ValueError, r'RMSprop: argument "rho" must be in \[0, 1\), received 1.0'),
    (lambda: optimizers.RMSprop(momentum=-0.5), ValueError, r'RMSprop: argument "momentum" must be in \[0, 1\]'),
    (lambda: optimizers.Adagrad(initial_accumulator_value=-1), ValueError,
     r'Adagrad: argument "initial_accumulator_value" must be in \[0, inf\), received -1'),
    (lambda: optimizers.AdamW(weight_decay=None), ValueError, r'AdamW: argument "weight_decay" must be a number >= 0'),
    (lambda: optimizers.AdamW(weight_decay=-0.1), ValueError, r'AdamW: argument "weight_decay" must be in \[0, inf\)'),
    (lambda: optimizers.SGD(clipnorm=1.0, clipvalue=0.5), ValueError,
     r"SGD: at most one of clipnorm, clipvalue and global_clipnorm can be set, received "
     r"\{'clipnorm': 1.0, 'clipvalue': 0.5\}"),
    (lambda: optimizers.Adam(clipnorm=0), ValueError, r'Adam: argument "clipnorm" must be in \(0, inf\), received 0'),
    (lambda: optimizers.Adam(global_clipnorm=-1.0), ValueError, r'Adam: argument "global_clipnorm" must be in \(0, inf\)'),
    (lambda: optimizers.Adam(learning_rate=float("nan")), ValueError, r'Adam: argument "learning_rate" must be in'),
    (lambda: optimizers.Adam(learning_rate=None), TypeError,
     r'Adam: argument "learning_rate" must be a number or a LearningRateSchedule, received None'),
    (lambda: optimizers.Nadam(beta_1=1.0), ValueError, r'Nadam: argument "beta_1" must be in \[0, 1\), received 1.0'),
    (lambda: optimizers.Nadam(beta_2=-1), ValueError, r'Nadam: argument "beta_2" must be in \[0, 1\), received -1'),
    (lambda: optimizers.Nadam(epsilon=0), ValueError, r'Nadam: argument "epsilon" must be in \(0, inf\), received 0'),
    (lambda: optimizers.Adamax(beta_1=2), ValueError, r'Adamax: argument "beta_1" must be in \[0, 1\), received 2'),
    (lambda: optimizers.Adamax(beta_2=1.0), ValueError, r'Adamax: argument "beta_2" must be in \[0, 1\), received 1.0'),
    (lambda: optimizers.Adamax(epsilon="x"), TypeError, r'Adamax: argument "epsilon" must be a number'),
    (lambda: optimizers.Adadelta(rho=1.0), ValueError, r'Adadelta: argument "rho" must be in \[0, 1\), received 1.0'),
    (lambda: optimizers.Adadelta(epsilon=-1e-7), ValueError, r'Adadelta: argument "epsilon" must be in \(0, inf\)'),
    (lambda: optimizers.Adadelta(clipvalue=1.0, clipnorm=1.0), ValueError,
     r"Adadelta: at most one of clipnorm, clipvalue and global_clipnorm can be set"),
])
def test_hyperparameter_validation(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_learning_rate_setter_validates():
    opt = optimizers.SGD()
    with pytest.raises(ValueError, match=r'SGD: argument "learning_rate" must be in \(0, inf\), received -1'):
        opt.learning_rate = -1


# -- names, lookup, config ------------------------------------------------------------
@pytest.mark.parametrize("name, cls", [
    ("adam", optimizers.Adam), ("Adam", optimizers.Adam), ("sgd", optimizers.SGD), ("SGD", optimizers.SGD),
    ("rmsprop", optimizers.RMSprop), ("RMSprop", optimizers.RMSprop), ("adagrad", optimizers.Adagrad),
    ("adamw", optimizers.AdamW), ("AdamW", optimizers.AdamW),
    ("nadam", optimizers.Nadam), ("Nadam", optimizers.Nadam), ("adadelta", optimizers.Adadelta),
    ("Adadelta", optimizers.Adadelta), ("adamax", optimizers.Adamax), ("Adamax", optimizers.Adamax),
])
def test_get_by_name(name, cls):
    assert type(optimizers.get(name)) is cls


def test_keras_defaults():
    assert optimizers.SGD().get_config() == {
        "name": "SGD", "learning_rate": 0.01, "weight_decay": None, "clipnorm": None, "global_clipnorm": None,
        "clipvalue": None, "momentum": 0.0, "nesterov": False}
    adam = optimizers.Adam()
    assert (adam.name, adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == ("adam", 0.001, 0.9, 0.999, 1e-7)
    assert optimizers.AdamW().weight_decay == 0.004
    rms = optimizers.RMSprop()
    assert (rms.name, rms.learning_rate, rms.rho, rms.momentum, rms.epsilon) == ("rmsprop", 0.001, 0.9, 0.0, 1e-7)
    ada = optimizers.Adagrad()
    assert (ada.name, ada.learning_rate, ada.initial_accumulator_value) == ("adagrad", 0.001, 0.1)


# keras 3.15.1's get_config() of Nadam(), Adadelta(), Adamax() without the EMA / loss-scale / accumulation keys
# (learning_rate read back from Keras's float32 variable there)
KERAS_CONFIGS = {
    optimizers.Nadam: {"name": "nadam", "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07},
    optimizers.Adadelta: {"name": "adadelta", "learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-07},
    optimizers.Adamax: {"name": "adamax", "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07},
}


@pytest.mark.parametrize("cls", list(KERAS_CONFIGS), ids=lambda c: c.__name__)
def test_new_optimizers_keras_defaults_and_config(cls):
    common = {"weight_decay": None, "clipnorm": None, "global_clipnorm": None, "clipvalue": None}
    assert cls().get_config() == {**KERAS_CONFIGS[cls], **common}
    keras_config = {**KERAS_CONFIGS[cls], **common, "use_ema": False, "ema_momentum": 0.99,
                    "ema_overwrite_frequency": None, "loss_scale_factor": None, "gradient_accumulation_steps": None}
    again = optimizers.get({"module": "keras.optimizers", "class_name": cls.__name__, "config": keras_config,
                            "registered_name": None})
    assert type(again) is cls and again.get_config() == cls().get_config()


def test_get_unknown_lists_known_names():
    with pytest.raises(ValueError, match=r"Unknown optimizer 'lion'; known: \['adadelta', 'adagrad', 'adam', "
                                         r"'adamax', 'adamw', 'nadam', 'rmsprop', 'sgd'\]"):
        optimizers.get("lion")
    with pytest.raises(TypeError, match=r"optimizers.get: expected an optimizer name"):
        optimizers.get(0.1)


def test_get_returns_instances_unchanged():
    opt = optimizers.SGD()
    assert optimizers.get(opt) is opt


@pytest.mark.parametrize("opt", RESUMABLE + [optimizers.RMSprop(centered=True, name="rms")], ids=lambda o: o.name)
def test_config_round_trip(opt):
    data = json.loads(json.dumps(optimizers.serialize(opt)))
    again = optimizers.get(data)
    assert type(again) is type(opt) and again.get_config() == opt.get_config()


def test_reads_keras_configs():
    keras_config = {"module": "keras.optimizers", "class_name": "Adam", "registered_name": None, "config": {
        "name": "adam", "learning_rate": 0.0005, "weight_decay": None, "clipnorm": None, "global_clipnorm": None,
        "clipvalue": None, "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
        "loss_scale_factor": None, "gradient_accumulation_steps": None,
        "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False}}
    assert optimizers.get(keras_config).learning_rate == 0.0005
    keras_config["config"]["use_ema"] = True
    with pytest.raises(ValueError, match=r'Adam: Keras option "use_ema" is only supported at its default False'):
        optimizers.get(keras_config)
