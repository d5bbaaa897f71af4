"""Every fused primitive against its plain twin (values, and gradients to second order), every
primitive through check_grads to second order, and float32 kept float32 through whole steps.

Tolerances: in float64 the fused and plain forms differ only by the order of roundings, a few
units of 2^-53 ~ 1e-16 on O(1) values; we allow 1e-14 on values and 1e-12 / 1e-10 on first /
second derivatives, whose sums over a batch accumulate a few hundred roundings."""
import autograd.core
import autograd.numpy as anp
import numpy as np
import pytest
from autograd import elementwise_grad, grad, make_vjp, value_and_grad
from autograd.test_util import check_grads

import minimalscore as ms
from minimalscore import conv, fused, models, nn, optim, tree


def float64_params(sizes, seed=0, scale=2.0):
    """A float64 MLP scaled away from PyTorch's near-flat initialisation (sharper witnesses)."""
    params = models.mlp_init(ms.backend.default_rng(seed), sizes)
    return tree.tree_map(lambda a: scale * a.astype(np.float64), params)


def assert_trees_close(a, b, **tol):
    for u, v in zip(tree.tree_leaves(a), tree.tree_leaves(b)):
        assert np.allclose(u, v, **tol)


def second_derivative(f):
    return elementwise_grad(elementwise_grad(f))


# ------------------------------------------------------------ elementwise: softplus, its derivative, ELU
@pytest.mark.identity
def test_softplus_equals_logaddexp_across_its_branch_point():
    x = np.concatenate([np.linspace(-100, 100, 2001), np.linspace(39, 41, 2001)])
    exact = nn.softplus_reference(x)
    assert np.max(np.abs(fused.softplus(x) - exact) / exact) < 1e-15
    # float32: relative error of a few roundings (2^-24 ~ 6e-8 each), also for x << 0 (down to
    # where e^x turns subnormal)
    x32 = x[x > -80].astype(np.float32)
    exact32 = nn.softplus_reference(x32.astype(np.float64))
    assert np.max(np.abs(fused.softplus(x32) - exact32) / exact32) < 3e-7
    # derivatives: sigmoid and sigmoid (1 - sigmoid), both O(1): absolute tolerance 1e-14
    xs = np.linspace(-30, 30, 601)
    assert np.allclose(elementwise_grad(fused.softplus)(xs), elementwise_grad(nn.softplus_reference)(xs),
                       rtol=0, atol=1e-14)
    assert np.allclose(second_derivative(fused.softplus)(xs), second_derivative(nn.softplus_reference)(xs),
                       rtol=0, atol=1e-14)


@pytest.mark.identity
def test_sigmoid_from_softplus_equals_sigmoid():
    x = np.concatenate([np.linspace(-100, 100, 2001), np.linspace(39, 41, 2001)])
    # sigmoid = 1 - e^-h has an absolute error bound (its docstring): e^-h's rounding (<= 1 ulp
    # of 1), 1 - d's (half an ulp), h's relative error times max h e^-h = 1/e: ~2.5e-16 in
    # float64; in float32 the vectorised exp is good to a few ulp and h to 3e-7: ~3e-7 in all.
    assert np.max(np.abs(fused.sigmoid_from_softplus(fused.softplus(x)) - nn.sigmoid(x))) < 4e-16
    x32 = x[x > -80].astype(np.float32)
    sigmoid32 = fused.sigmoid_from_softplus(fused.softplus(x32))
    assert sigmoid32.dtype == np.float32
    assert np.max(np.abs(sigmoid32 - nn.sigmoid(x32.astype(np.float64)))) < 4e-7
    # its derivatives in x, through softplus: sigmoid' and sigmoid''
    xs = np.linspace(-30, 30, 601)
    through = lambda y: fused.sigmoid_from_softplus(fused.softplus(y))
    assert np.allclose(elementwise_grad(through)(xs), elementwise_grad(nn.sigmoid)(xs), rtol=0, atol=1e-14)
    assert np.allclose(second_derivative(through)(xs), second_derivative(nn.sigmoid)(xs), rtol=0, atol=1e-14)


@pytest.mark.identity
def test_elu_equals_its_definition():
    # not at 0, the kink of elu' (where autograd's minimum splits its gradient in halves)
    x = np.concatenate([np.linspace(-30, 30, 600), [-1e-3, 1e-3]])
    assert np.array_equal(fused.elu(x), nn.elu_reference(x))  # the same operations: bit for bit
    for derivative in (elementwise_grad, second_derivative):
        assert np.allclose(derivative(fused.elu)(x), derivative(nn.elu_reference)(x), rtol=0, atol=1e-15)


# points away from 0: elu' has a kink at 0 that finite differences would straddle
@pytest.mark.parametrize("primitive", [fused.softplus, fused.sigmoid_from_softplus, fused.elu])
def test_elementwise_primitives_grads_order2(primitive):
    check_grads(primitive, modes=["rev"], order=2)(np.array([-3.0, -1.2, -0.4, 0.3, 0.9, 2.5]))


# ------------------------------------------------------------ fused dense layer
@pytest.mark.identity
@pytest.mark.parametrize("activation", [nn.softplus, nn.elu, None])
def test_fused_dense_equals_reference_to_second_order(activation):
    layer = float64_params([3, 4])["layers"][0]
    x = np.random.default_rng(1).standard_normal((5, 3))
    v = np.random.default_rng(2).standard_normal((5, 4))
    assert fused.dense_applies(layer, activation)
    plain = nn.dense_reference(layer, x, activation)
    assert np.allclose(fused.dense(layer, x, activation), plain, atol=1e-14)
    assert np.allclose(nn.dense(layer, x, activation), plain, atol=1e-14)

    def vjp_dot(f):  # a scalar through a VJP in x: its parameter gradient is a second derivative
        return lambda p: anp.sum(make_vjp(lambda y: f(p, y, activation))(x)[0](v) ** 2)
    assert_trees_close(grad(vjp_dot(fused.dense))(layer), grad(vjp_dot(nn.dense_reference))(layer),
                       atol=1e-12)
    check_grads(lambda p, y: fused.dense(p, y, activation), modes=["rev"], order=2)(layer, x)


def test_dense_falls_back_for_unfused_activations_and_plain_dicts_of_traced_arrays():
    layer = float64_params([3, 4])["layers"][0]
    x = np.random.default_rng(1).standard_normal((5, 3))
    assert not fused.dense_applies(layer, nn.swish)
    assert np.allclose(nn.dense(layer, x, nn.swish), nn.dense_reference(layer, x, nn.swish))
    # a layer rebuilt inside the differentiated function is a plain dict holding traced arrays
    rebuilt = lambda W: anp.sum(nn.dense({"W": W, "b": layer["b"]}, x, nn.softplus))
    reference = lambda W: anp.sum(nn.dense_reference({"W": W, "b": layer["b"]}, x, nn.softplus))
    assert np.allclose(grad(rebuilt)(layer["W"]), grad(reference)(layer["W"]))


# ------------------------------------------------------------ instance norm++ as one primitive
@pytest.mark.identity
@pytest.mark.parametrize("eps", [{}, {"eps": 0.5}])  # the default, and one large enough to matter
def test_instance_norm_primitive_equals_reference_to_second_order(eps):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, 5, 6)) * 2 + rng.standard_normal((3, 4, 1, 1))
    tables = [rng.standard_normal((3, 4)) for _ in range(3)]
    v = rng.standard_normal(x.shape)
    assert np.allclose(fused.instance_norm_plus_plus(x, *tables, **eps),
                       nn.instance_norm_plus_plus_reference(x, *tables, **eps), atol=1e-14)
    # all four cotangents, then a squared VJP's gradient in (gamma, beta, alpha): second derivatives
    fast, plain = (make_vjp(lambda *a: f(*a, **eps), argnum=(0, 1, 2, 3))(x, *tables)[0](v)
                   for f in (fused.instance_norm_plus_plus, nn.instance_norm_plus_plus_reference))
    assert_trees_close(fast, plain, atol=1e-12)

    def vjp_dot(f):
        return lambda t: anp.sum(make_vjp(lambda y: f(y, *t, **eps))(x)[0](v) ** 2)
    assert_trees_close(grad(vjp_dot(fused.instance_norm_plus_plus))(tables),
                       grad(vjp_dot(nn.instance_norm_plus_plus_reference))(tables), atol=1e-10)
    check_grads(lambda *a: fused.instance_norm_plus_plus(*a, **eps), modes=["rev"], order=2)(
        x[:2, :3, :4, :4], *(t[:2, :3] for t in tables))


def test_instance_norm_wants_one_row_per_example():
    # the VJP returns (N, C) cotangents: a (C,) row would get a wrongly shaped gradient
    x = np.zeros((3, 4, 5, 5))
    with pytest.raises(ValueError, match="gamma.*one row per example"):
        nn.instance_norm_plus_plus(x, np.ones(4), np.zeros(4), np.zeros(4))


# ------------------------------------------------------------ 0.5 E||r||^2
@pytest.mark.identity
def test_half_mean_squared_norm_equals_its_definition():
    r = np.random.default_rng(0).standard_normal((6, 2, 3))
    assert np.isclose(fused.half_mean_squared_norm(r), fused.half_mean_squared_norm_reference(r),
                      rtol=1e-14, atol=0)
    assert np.allclose(grad(fused.half_mean_squared_norm)(r), grad(fused.half_mean_squared_norm_reference)(r),
                       rtol=0, atol=1e-15)
    v = np.random.default_rng(1).standard_normal(r.shape)  # a Hessian-vector product: H = I / N
    hvp = lambda f: grad(lambda y: anp.sum(grad(f)(y) * v))(r)
    assert np.allclose(hvp(fused.half_mean_squared_norm), hvp(fused.half_mean_squared_norm_reference),
                       rtol=0, atol=1e-15)
    check_grads(fused.half_mean_squared_norm, modes=["rev"], order=2)(r)


# ------------------------------------------------------------ conv2d on the flat grid
# (4, 4): NCSN's last stage, where the shared padding (a tap reading past a row or an image
# lands in its neighbour's zeros) is half the grid; (3, 5) with padding 0: no padding to share.
@pytest.mark.identity
@pytest.mark.parametrize("kernel,padding,dilation",
                         [((3, 3), 1, 1), ((3, 5), 0, 1), ((3, 3), 2, 2), ((1, 1), 0, 1), ((3, 3), 4, 4),
                          ((5, 3), 3, 2)])
def test_flat_grid_conv2d_equals_the_definition_with_gradients(kernel, padding, dilation):
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 7, 8)), rng.standard_normal((4, 3) + kernel)
    y = conv.conv2d(x, w, padding, dilation)
    assert np.allclose(y, conv.conv2d_reference(x, w, padding, dilation), atol=1e-12)
    g = rng.standard_normal(y.shape)
    fast = make_vjp(conv.conv2d, argnum=(0, 1))(x, w, padding, dilation)[0](g)
    plain = make_vjp(conv.conv2d_reference, argnum=(0, 1))(x, w, padding, dilation)[0](g)
    for a, b in zip(fast, plain):
        assert np.allclose(a, b, atol=1e-12)
    if kernel[0] != kernel[1]:  # unequal transposed paddings, to second order (square: test_nn)
        check_grads(lambda x, w: conv.conv2d(x, w, padding, dilation), modes=["rev"], order=2)(
            x[:1, :2], w[:2, :2])


# ------------------------------------------------------------ Adam's one-array moving average
@pytest.mark.identity
def test_moving_average_is_the_convex_combination_and_keeps_its_inputs():
    a, x = np.array([1.0, -2.0]), np.array([3.0, 5.0])
    assert np.allclose(optim._moving_average(a, x, 0.9), 0.9 * a + 0.1 * x, rtol=1e-15)
    assert a.tolist() == [1.0, -2.0] and x.tolist() == [3.0, 5.0]


# ------------------------------------------------------------ float32 through whole steps
def cotangent_dtypes(monkeypatch, fun, *args):
    """Value and gradient of fun, recording the dtype of every cotangent the backward pass
    produces (autograd 1.9's backward_pass, replaced by the same loop plus a record)."""
    seen = set()

    def recording_backward_pass(g, end_node):
        outgrads = {end_node: (g, False)}
        for node in autograd.core.toposort(end_node):
            outgrad = outgrads.pop(node)
            for parent, ingrad in zip(node.parents, node.vjp(outgrad[0])):
                seen.update(str(a.dtype) for a in tree.tree_leaves(ingrad) if hasattr(a, "dtype"))
                outgrads[parent] = autograd.core.add_outgrads(outgrads.get(parent), ingrad)
        return outgrad[0]
    monkeypatch.setattr(autograd.core, "backward_pass", recording_backward_pass)
    value, grads = value_and_grad(fun)(*args)
    return value, grads, seen


def float32_losses():
    from minimalscore import objectives
    sigmas = np.geomspace(1.0, 0.01, 10).astype(np.float32)
    mlp = lambda p: (lambda y: models.mlp(p, y))
    return {
        "multiscale_dsm": (lambda p, x, rng: objectives.multiscale_dsm(
            lambda y, s: models.noise_conditional_mlp(p, y, s), x, sigmas, rng), 3),
        "exact_sm_closed_form": (lambda p, x, rng: objectives.implicit_sm(
            mlp(p), x, lambda y: models.mlp_score_and_divergence(p, y)), 2),
        "exact_sm_generic": (lambda p, x, rng: objectives.implicit_sm(mlp(p), x), 2),
        "sliced_sm": (lambda p, x, rng: objectives.sliced_sm(mlp(p), x, rng), 2),
        "dsm": (lambda p, x, rng: objectives.dsm(mlp(p), x, 0.1, rng), 2),
    }


@pytest.mark.parametrize("name", list(float32_losses()))
def test_float32_training_steps_never_touch_float64(monkeypatch, name):
    loss, d_in = float32_losses()[name]
    params = models.mlp_init(ms.backend.default_rng(0), [d_in, 16, 16, 2])
    x = ms.backend.default_rng(1).normal((8, 2))
    value, grads, dtypes = cotangent_dtypes(monkeypatch, loss, params, x, ms.backend.default_rng(2))
    assert dtypes == {"float32"} and value.dtype == np.float32
    new_params, state = optim.adam_update(params, grads, optim.adam_init(params))
    assert {str(a.dtype) for a in tree.tree_leaves((new_params, state["m"], state["v"]))} == {"float32"}


def test_float32_conv2d_gradients_never_touch_float64(monkeypatch):
    rng = ms.backend.default_rng(0)
    x, w, g = rng.normal((2, 3, 6, 6)), rng.normal((4, 3, 3, 3)), rng.normal((2, 4, 6, 6))
    _, grads, dtypes = cotangent_dtypes(monkeypatch, lambda w: anp.sum(conv.conv2d(x, w, 1) * g), w)
    assert dtypes == {"float32"} and grads.dtype == np.float32
