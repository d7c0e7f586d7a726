"""Convolution and pooling ops in NHWC: shape rules, gradients and the public functions.

The kernels are in `_conv_kernels` (im2col + one GEMM per convolution pass) and `_pool_kernels` (max
pooling). Conv2D, its two gradients and MaxPool / MaxPoolGrad accept `out=`, so a Plan hands them buffers
allocated once and the filter gradients can be written straight into an optimizer's gradient slab.
"""
import numpy as np

from ...errors import InvalidArgumentError
from .. import intra_op
from ..registry import apply_op, register
from . import _conv_kernels as _ck
from . import _pool_kernels as _pk
from .core import convert_to_tensor


# -- geometry ------------------------------------------------------------------------------------------------
def _pair(v, name):
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    v = [int(x) for x in v]
    if len(v) == 4:
        return v[1], v[2]
    if len(v) == 2:
        return v[0], v[1]
    if len(v) == 1:
        return v[0], v[0]
    raise InvalidArgumentError(f"{name} must be an int or a list of 1, 2 or 4 ints, got {v}")


def _out_and_pads(size, k, stride, dilation, padding):
    """Output length and (before, after) padding of one spatial dimension, TF's rule."""
    eff = (k - 1) * dilation + 1
    if padding == "VALID":
        return (size - eff) // stride + 1, (0, 0)
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return out, (total // 2, total - total // 2)


def _geometry(in_shape, k_hw, strides, dilations, padding):
    h, w = in_shape[1], in_shape[2]
    oh, ph = _out_and_pads(h, k_hw[0], strides[0], dilations[0], padding)
    ow, pw = _out_and_pads(w, k_hw[1], strides[1], dilations[1], padding)
    return oh, ow, ph, pw


def _static_out(in_shape, k_hw, strides, dilations, padding):
    if in_shape.ndims is None:
        return None, None
    h, w = in_shape[1], in_shape[2]
    oh = None if h is None else _out_and_pads(h, k_hw[0], strides[0], dilations[0], padding)[0]
    ow = None if w is None else _out_and_pads(w, k_hw[1], strides[1], dilations[1], padding)[0]
    if (oh is not None and oh <= 0) or (ow is not None and ow <= 0):
        raise InvalidArgumentError(f"the window {k_hw} does not fit the input {tuple(in_shape)} with {padding} padding")
    return oh, ow


_patches, _pad, _col2im = _ck.patches, _ck.pad, _ck.col2im


# -- conv2d -----------------------------------------------------------------------------------------------------
def _conv_attrs(a):
    return a["strides"], a["dilations"], a["padding"]


def _conv_infer(inputs, attrs):
    x, w = inputs[0].shape, inputs[1].shape
    if w.ndims is not None and w.ndims != 4:
        raise InvalidArgumentError(f"conv2d filters must be [kh, kw, in, out], got {w}")
    if x.ndims is not None and x.ndims != 4:
        raise InvalidArgumentError(f"conv2d input must be NHWC (rank 4), got {x}")
    if x.ndims and w.ndims and x[3] is not None and w[2] is not None and x[3] != w[2]:
        raise InvalidArgumentError(f"input has {x[3]} channels but the filters expect {w[2]}")
    oh, ow = _static_out(x, (w[0], w[1]), *_conv_attrs(attrs))
    return [((x[0] if x.ndims else None, oh, ow, w[3] if w.ndims else None), inputs[0].dtype)]


def _conv_forward(xp, x, w, strides, dilations, padding, out=None, scratch=None):
    geometry = _geometry(x.shape, w.shape[:2], strides, dilations, padding)
    return _ck.conv_forward(xp, x, w, strides, dilations, geometry, out=out, scratch=scratch)


def _conv_backprop_input(xp, x_shape, w, dy, strides, dilations, padding, out=None, scratch=None):
    geometry = _geometry(x_shape, w.shape[:2], strides, dilations, padding)
    return _ck.conv_backprop_input(xp, x_shape, w, dy, strides, dilations, geometry, out=out, scratch=scratch)


def _conv_backprop_filter(xp, x, w_shape, dy, strides, dilations, padding, out=None, scratch=None):
    geometry = _geometry(x.shape, w_shape[:2], strides, dilations, padding)
    return _ck.conv_backprop_filter(xp, x, w_shape, dy, strides, dilations, geometry, out=out, scratch=scratch)


def _conv_kernel(xp, a):
    scratch = _ck.Scratch()

    def run(x, w, out=None):
        return _conv_forward(xp, x, w, *_conv_attrs(a), out=out, scratch=scratch)
    return run


def _conv_input_kernel(xp, a):
    scratch = _ck.Scratch()

    def run(x, w, dy, out=None):   # x supplies only the shape
        return _conv_backprop_input(xp, x.shape, w, dy, *_conv_attrs(a), out=out, scratch=scratch)
    return run


def _conv_filter_kernel(xp, a):
    scratch = _ck.Scratch()

    def run(x, w, dy, out=None):   # w supplies only the shape
        return _conv_backprop_filter(xp, x, w.shape, dy, *_conv_attrs(a), out=out, scratch=scratch)
    return run


register("Conv2D", infer=_conv_infer, kernel=_conv_kernel, out_arg=True,
         grad=lambda op, g: [apply_op("Conv2DBackpropInput", [op.inputs[0], op.inputs[1], g], op.attrs),
                             apply_op("Conv2DBackpropFilter", [op.inputs[0], op.inputs[1], g], op.attrs)])
# Conv2DBackpropInput(x_like, w, dy): x_like supplies only the shape. Linear in w and dy.
register("Conv2DBackpropInput", infer=lambda i, a: [(i[0].shape, i[2].dtype)], kernel=_conv_input_kernel,
         out_arg=True,
         grad=lambda op, g: [None, apply_op("Conv2DBackpropFilter", [g, op.inputs[1], op.inputs[2]], op.attrs),
                             apply_op("Conv2D", [g, op.inputs[1]], op.attrs)])
# Conv2DBackpropFilter(x, w_like, dy): w_like supplies only the shape. Linear in x and dy.
register("Conv2DBackpropFilter", infer=lambda i, a: [(i[1].shape, i[2].dtype)], kernel=_conv_filter_kernel,
         out_arg=True,
         grad=lambda op, g: [apply_op("Conv2DBackpropInput", [op.inputs[0], g, op.inputs[2]], op.attrs), None,
                             apply_op("Conv2D", [op.inputs[0], g], op.attrs)])


def _norm_padding(padding):
    p = padding.upper() if isinstance(padding, str) else padding
    if p not in ("SAME", "VALID"):
        raise InvalidArgumentError(f"padding must be 'SAME' or 'VALID', got {padding!r}")
    return p


def _check_format(data_format):
    if data_format not in (None, "NHWC", "NWC", "channels_last"):
        raise InvalidArgumentError(f"only NHWC (channels_last) is supported, got data_format={data_format!r}")


def conv2d(input, filters=None, strides=1, padding="VALID", data_format="NHWC", dilations=None, name=None,
           filter=None, use_cudnn_on_gpu=None):
    """2-D convolution of an NHWC input with [kh, kw, in, out] filters (TF's cross-correlation)."""
    _check_format(data_format)
    x = convert_to_tensor(input)
    w = convert_to_tensor(filters if filters is not None else filter, x.dtype)
    attrs = {"strides": _pair(strides, "strides"), "dilations": _pair(dilations or 1, "dilations"),
             "padding": _norm_padding(padding)}
    if attrs["dilations"] != (1, 1) and attrs["strides"] != (1, 1):
        raise InvalidArgumentError("conv2d with both strides > 1 and dilations > 1 is not supported (as in TF)")
    return apply_op("Conv2D", [x, w], attrs, name=name)


def _transpose_infer(inputs, attrs):
    return [((inputs[1].shape[0] if inputs[1].shape.ndims else None,) + tuple(attrs["out_hwc"]), inputs[1].dtype)]


def _transpose_kernel(xp, a):
    def run(w, dy):
        shape = (dy.shape[0],) + tuple(a["out_hwc"])
        return _conv_backprop_input(xp, shape, w, dy, *_conv_attrs(a))
    return run


def _transpose_grad(op, g):
    w, dy = op.inputs
    attrs = {k: op.attrs[k] for k in ("strides", "dilations", "padding")}
    return [apply_op("Conv2DBackpropFilter", [g, w, dy], attrs), apply_op("Conv2D", [g, w], attrs)]


register("Conv2DTranspose", infer=_transpose_infer, kernel=_transpose_kernel, grad=_transpose_grad)


def conv2d_transpose(input, filters, output_shape, strides, padding="SAME", data_format="NHWC", dilations=None,
                     name=None):
    """The gradient of conv2d with respect to its input: filters are [kh, kw, out, in]."""
    _check_format(data_format)
    x = convert_to_tensor(input)
    w = convert_to_tensor(filters, x.dtype)
    from ..registry import static_value
    shp = static_value(output_shape) if hasattr(output_shape, "op") else output_shape
    shp = [int(d) for d in shp]
    attrs = {"strides": _pair(strides, "strides"), "dilations": _pair(dilations or 1, "dilations"),
             "padding": _norm_padding(padding), "out_hwc": tuple(shp[1:])}
    return apply_op("Conv2DTranspose", [w, x], attrs, name=name)


# -- depthwise ----------------------------------------------------------------------------------------------------
def _dw_infer(inputs, attrs):
    x, w = inputs[0].shape, inputs[1].shape
    oh, ow = _static_out(x, (w[0], w[1]), *_conv_attrs(attrs))
    c = None if x.ndims is None or x[3] is None or w[3] is None else x[3] * w[3]
    return [((x[0] if x.ndims else None, oh, ow, c), inputs[0].dtype)]


def _dw_forward(xp, x, w, strides, dilations, padding):
    kh, kw, c, m = w.shape
    oh, ow, ph, pw = _geometry(x.shape, (kh, kw), strides, dilations, padding)
    p = _patches(xp, _pad(xp, x, ph, pw), kh, kw, oh, ow, strides, dilations)
    out = xp.einsum("nhwijc,ijcm->nhwcm", p, w, optimize=True)
    return out.reshape(x.shape[0], oh, ow, c * m)


def _dw_backprop_input(xp, x_shape, w, dy, strides, dilations, padding):
    kh, kw, c, m = w.shape
    oh, ow, ph, pw = _geometry(x_shape, (kh, kw), strides, dilations, padding)
    dy5 = dy.reshape(x_shape[0], oh, ow, c, m)
    dcols = xp.einsum("nhwcm,ijcm->nhwijc", dy5, w, optimize=True)
    return _col2im(xp, dcols, x_shape, kh, kw, oh, ow, ph, pw, strides, dilations)


def _dw_backprop_filter(xp, x, w_shape, dy, strides, dilations, padding):
    kh, kw, c, m = w_shape
    oh, ow, ph, pw = _geometry(x.shape, (kh, kw), strides, dilations, padding)
    p = _patches(xp, _pad(xp, x, ph, pw), kh, kw, oh, ow, strides, dilations)
    return xp.einsum("nhwijc,nhwcm->ijcm", p, dy.reshape(x.shape[0], oh, ow, c, m), optimize=True)


register("DepthwiseConv2dNative", infer=_dw_infer,
         kernel=lambda xp, a: (lambda x, w: _dw_forward(xp, x, w, *_conv_attrs(a))),
         grad=lambda op, g: [apply_op("DepthwiseConv2dNativeBackpropInput", [op.inputs[0], op.inputs[1], g], op.attrs),
                             apply_op("DepthwiseConv2dNativeBackpropFilter", [op.inputs[0], op.inputs[1], g],
                                      op.attrs)])
register("DepthwiseConv2dNativeBackpropInput", infer=lambda i, a: [(i[0].shape, i[2].dtype)],
         kernel=lambda xp, a: (lambda x, w, dy: _dw_backprop_input(xp, x.shape, w, dy, *_conv_attrs(a))),
         grad=lambda op, g: [None, apply_op("DepthwiseConv2dNativeBackpropFilter", [g, op.inputs[1], op.inputs[2]],
                                            op.attrs),
                             apply_op("DepthwiseConv2dNative", [g, op.inputs[1]], op.attrs)])
register("DepthwiseConv2dNativeBackpropFilter", infer=lambda i, a: [(i[1].shape, i[2].dtype)],
         kernel=lambda xp, a: (lambda x, w, dy: _dw_backprop_filter(xp, x, w.shape, dy, *_conv_attrs(a))),
         grad=lambda op, g: [apply_op("DepthwiseConv2dNativeBackpropInput", [op.inputs[0], g, op.inputs[2]], op.attrs),
                             None, apply_op("DepthwiseConv2dNative", [op.inputs[0], g], op.attrs)])


def depthwise_conv2d(input, filter, strides=1, padding="VALID", rate=None, name=None, data_format=None,
                     dilations=None):
    """Per-channel convolution: filter [kh, kw, in, multiplier] -> in * multiplier output channels."""
    _check_format(data_format)
    x = convert_to_tensor(input)
    w = convert_to_tensor(filter, x.dtype)
    attrs = {"strides": _pair(strides, "strides"), "dilations": _pair(dilations or rate or 1, "dilations"),
             "padding": _norm_padding(padding)}
    return apply_op("DepthwiseConv2dNative", [x, w], attrs, name=name)


def separable_conv2d(input, depthwise_filter, pointwise_filter, strides=1, padding="VALID", rate=None, name=None,
                     data_format=None, dilations=None):
    """Depthwise convolution followed by a 1x1 convolution."""
    h = depthwise_conv2d(input, depthwise_filter, strides, padding, rate, data_format=data_format,
                         dilations=dilations)
    return conv2d(h, pointwise_filter, 1, "VALID", name=name)


# -- 1-D ----------------------------------------------------------------------------------------------------------
def conv1d(input, filters, stride=1, padding="VALID", data_format="NWC", dilations=None, name=None):
    """1-D convolution of an NWC input with [k, in, out] filters (through conv2d with height 1)."""
    from .array_ops import expand_dims, squeeze
    x = expand_dims(convert_to_tensor(input), 1)
    w = expand_dims(convert_to_tensor(filters), 0)
    s = stride if isinstance(stride, (int, np.integer)) else list(stride)[-2 if len(list(stride)) == 3 else 0]
    d = 1 if dilations is None else (dilations if isinstance(dilations, (int, np.integer)) else list(dilations)[-1])
    return squeeze(conv2d(x, w, (1, int(s)), padding, dilations=(1, int(d))), [1], name=name)


# -- pooling ------------------------------------------------------------------------------------------------------
def _pool_attrs(ksize, strides, padding):
    return {"ksize": _pair(ksize, "ksize"), "strides": _pair(strides, "strides"), "padding": _norm_padding(padding)}


def _pool_infer(inputs, attrs):
    x = inputs[0].shape
    oh, ow = _static_out(x, attrs["ksize"], attrs["strides"], (1, 1), attrs["padding"])
    return [((x[0], oh, ow, x[3]) if x.ndims else None, inputs[0].dtype)]


def _pool_geometry(x_shape, a):
    return _geometry(x_shape, a["ksize"], a["strides"], (1, 1), a["padding"])


def _max_pool_general(xp, x, a):
    """Any window / stride: the max over a stride-tricks view of the windows."""
    kh, kw = a["ksize"]
    oh, ow, ph, pw = _pool_geometry(x.shape, a)
    p = _patches(xp, _pad(xp, x, ph, pw, -np.inf), kh, kw, oh, ow, a["strides"], (1, 1))
    return p.max(axis=(3, 4))


def _max_pool_grad_general(xp, x, dy, a):
    """Any window / stride: argmax per window (the first maximum gets the gradient, as TF), then col2im."""
    kh, kw = a["ksize"]
    oh, ow, ph, pw = _pool_geometry(x.shape, a)
    p = _patches(xp, _pad(xp, x, ph, pw, -np.inf), kh, kw, oh, ow, a["strides"], (1, 1))
    n, _, _, c = x.shape
    arg = p.reshape(n, oh, ow, kh * kw, c).argmax(axis=3)
    cols = xp.zeros((n, oh, ow, kh, kw, c), dtype=dy.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = xp.where(arg == i * kw + j, dy, 0)
    return _col2im(xp, cols, x.shape, kh, kw, oh, ow, ph, pw, a["strides"], (1, 1))


def _max_pool_kernel(xp, a):
    (kh, kw), (sh, sw) = a["ksize"], a["strides"]
    disjoint = (kh, kw) == (sh, sw)

    def run(x, out=None):
        oh, ow, ph, pw = _pool_geometry(x.shape, a)
        shape = (x.shape[0], oh, ow, x.shape[3])
        split = intra_op.worth_splitting(xp, x.size)
        if disjoint:   # NumPy's maxima over block views are as fast as the numba loop here
            y = out if out is not None else xp.empty(shape, dtype=x.dtype)
            intra_op.run_chunks(lambda lo, hi: _pk.max_pool_blocks(xp, x[lo:hi], kh, kw, oh, ow, ph, pw,
                                                                   out=y[lo:hi]), x.shape[0], enabled=split)
            return y
        if _pk.use_numba(xp, x) and (out is None or (out.dtype == x.dtype and out.flags.c_contiguous)):
            y = out if out is not None else np.empty(shape, dtype=x.dtype)
            pool = _pk.numba_kernels()["max_pool"]
            intra_op.run_chunks(lambda lo, hi: pool(x[lo:hi], kh, kw, sh, sw, ph[0], pw[0], y[lo:hi]),
                                x.shape[0], enabled=split)
            return y
        return _ck.write_into(xp, _max_pool_general(xp, x, a), out)
    return run


def _max_pool_grad_kernel(xp, a):
    (kh, kw), (sh, sw) = a["ksize"], a["strides"]
    disjoint = (kh, kw) == (sh, sw)

    def run(x, dy, out=None):
        oh, ow, ph, pw = _pool_geometry(x.shape, a)
        if _pk.use_numba(xp, x, dy) and (out is None or (out.dtype == dy.dtype and out.flags.c_contiguous)):
            dx = out if out is not None else np.empty(x.shape, dtype=dy.dtype)
            grad = _pk.numba_kernels()["max_pool_grad"]
            intra_op.run_chunks(lambda lo, hi: grad(x[lo:hi], dy[lo:hi], kh, kw, sh, sw, ph[0], pw[0], dx[lo:hi]),
                                x.shape[0], enabled=intra_op.worth_splitting(xp, x.size))
            return dx
        if disjoint:
            return _pk.max_pool_grad_blocks(xp, x, dy, kh, kw, oh, ow, ph, pw, out=out)
        return _ck.write_into(xp, _max_pool_grad_general(xp, x, dy, a), out)
    return run


register("MaxPool", infer=_pool_infer, kernel=_max_pool_kernel, out_arg=True,
         grad=lambda op, g: [apply_op("MaxPoolGrad", [op.inputs[0], g], op.attrs)])
register("MaxPoolGrad", infer=lambda i, a: [(i[0].shape, i[1].dtype)], kernel=_max_pool_grad_kernel, out_arg=True,
         grad=lambda op, g: [None, apply_op("MaxPoolGradGrad", [op.inputs[0], g], op.attrs)])


def _max_pool_grad_grad_kernel(xp, a):
    kh, kw = a["ksize"]

    def run(x, g):   # gradient of MaxPoolGrad w.r.t. dy: pick g at each window's first maximum
        oh, ow, ph, pw = _pool_geometry(x.shape, a)
        px = _patches(xp, _pad(xp, x, ph, pw, -np.inf), kh, kw, oh, ow, a["strides"], (1, 1))
        pg = _patches(xp, _pad(xp, g, ph, pw, 0.0), kh, kw, oh, ow, a["strides"], (1, 1))
        n, _, _, c = x.shape
        arg = px.reshape(n, oh, ow, kh * kw, c).argmax(axis=3)
        return xp.take_along_axis(pg.reshape(n, oh, ow, kh * kw, c), arg[:, :, :, None, :], axis=3)[:, :, :, 0, :]
    return run


register("MaxPoolGradGrad", infer=_pool_infer, kernel=_max_pool_grad_grad_kernel,
         grad=lambda op, g: [None, apply_op("MaxPoolGrad", [op.inputs[0], g], op.attrs)])


def _avg_counts(xp, x_shape, a, dtype):
    kh, kw = a["ksize"]
    oh, ow, ph, pw = _pool_geometry(x_shape, a)
    ones = xp.ones((1, x_shape[1], x_shape[2], 1), dtype=dtype)
    p = _patches(xp, _pad(xp, ones, ph, pw), kh, kw, oh, ow, a["strides"], (1, 1))
    return p.sum(axis=(3, 4))   # TF averages over the valid (unpadded) elements only


def _avg_pool_kernel(xp, a):
    kh, kw = a["ksize"]

    def run(x):
        oh, ow, ph, pw = _pool_geometry(x.shape, a)
        p = _patches(xp, _pad(xp, x, ph, pw), kh, kw, oh, ow, a["strides"], (1, 1))
        return (p.sum(axis=(3, 4)) / _avg_counts(xp, x.shape, a, x.dtype)).astype(x.dtype, copy=False)
    return run


def _avg_pool_grad_kernel(xp, a):
    kh, kw = a["ksize"]

    def run(x, dy):
        oh, ow, ph, pw = _pool_geometry(x.shape, a)
        share = dy / _avg_counts(xp, x.shape, a, dy.dtype)
        cols = xp.broadcast_to(share[:, :, :, None, None, :], (x.shape[0], oh, ow, kh, kw, x.shape[3]))
        return _col2im(xp, cols, x.shape, kh, kw, oh, ow, ph, pw, a["strides"], (1, 1)).astype(dy.dtype, copy=False)
    return run


register("AvgPool", infer=_pool_infer, kernel=_avg_pool_kernel,
         grad=lambda op, g: [apply_op("AvgPoolGrad", [op.inputs[0], g], op.attrs)])
register("AvgPoolGrad", infer=lambda i, a: [(i[0].shape, i[1].dtype)], kernel=_avg_pool_grad_kernel,
         grad=lambda op, g: [None, apply_op("AvgPool", [g], op.attrs)])


def max_pool(value, ksize, strides, padding, data_format="NHWC", name=None, input=None):
    _check_format(data_format)
    x = convert_to_tensor(value if value is not None else input)
    return apply_op("MaxPool", [x], _pool_attrs(ksize, strides, padding), name=name)


def avg_pool(value, ksize, strides, padding, data_format="NHWC", name=None, input=None):
    _check_format(data_format)
    x = convert_to_tensor(value if value is not None else input)
    return apply_op("AvgPool", [x], _pool_attrs(ksize, strides, padding), name=name)


max_pool2d, avg_pool2d = max_pool, avg_pool


def _pool1d(fn, value, ksize, strides, padding, name):
    from .array_ops import expand_dims, squeeze
    x = expand_dims(convert_to_tensor(value), 1)
    k = ksize if isinstance(ksize, (int, np.integer)) else list(ksize)[-2 if len(list(ksize)) == 3 else 0]
    s = strides if isinstance(strides, (int, np.integer)) else list(strides)[-2 if len(list(strides)) == 3 else 0]
    return squeeze(fn(x, (1, int(k)), (1, int(s)), padding), [1], name=name)


def max_pool1d(input, ksize, strides, padding, data_format="NWC", name=None):
    return _pool1d(max_pool, input, ksize, strides, padding, name)


def avg_pool1d(input, ksize, strides, padding, data_format="NWC", name=None):
    return _pool1d(avg_pool, input, ksize, strides, padding, name)
