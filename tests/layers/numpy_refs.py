"""Plain NumPy reference implementations of layer maths (float64), written from the definitions, used by
the layer tests. Convolutions accumulate one kernel tap at a time over strided slices (no im2col), so
they share no code or strategy with the engine's kernels."""
import math

import numpy as np


def same_pads(size, k, stride, dilation=1):
    eff = (k - 1) * dilation + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + eff - size, 0)
    return out, total // 2, total - total // 2


def conv2d(x, k, strides=(1, 1), padding="valid", dilation=(1, 1)):
    """TF's conv2d (cross-correlation), NHWC input, kernel (kh, kw, in, out)."""
    n, h, w, c = x.shape
    kh, kw, _, f = k.shape
    (sh, sw), (dh, dw) = strides, dilation
    if padding == "same":
        oh, pt, pb = same_pads(h, kh, sh, dh)
        ow, pl, pr = same_pads(w, kw, sw, dw)
        x = np.pad(x, [(0, 0), (pt, pb), (pl, pr), (0, 0)])
    else:
        oh = (h - ((kh - 1) * dh + 1)) // sh + 1
        ow = (w - ((kw - 1) * dw + 1)) // sw + 1
    out = np.zeros((n, oh, ow, f))
    for a in range(kh):
        for b in range(kw):
            patch = x[:, a * dh: a * dh + sh * (oh - 1) + 1: sh, b * dw: b * dw + sw * (ow - 1) + 1: sw, :]
            out += patch @ k[a, b]
    return out


def conv2d_transpose(x, k, strides, padding, out_hw):
    """The transpose of conv2d: every input pixel scatters x[i, j] @ k[a, b].T to (i*s + a, j*s + b);
    kernel (kh, kw, out, in); the canvas is then cropped by SAME's leading padding to out_hw."""
    n, h, w, c = x.shape
    kh, kw, f, _ = k.shape
    sh, sw = strides
    canvas = np.zeros((n, (h - 1) * sh + kh, (w - 1) * sw + kw, f))
    for i in range(h):
        for j in range(w):
            for a in range(kh):
                for b in range(kw):
                    canvas[:, i * sh + a, j * sw + b, :] += x[:, i, j, :] @ k[a, b].T
    oh, ow = out_hw
    pt = max(kh - sh, 0) // 2 if padding == "same" else 0
    pl = max(kw - sw, 0) // 2 if padding == "same" else 0
    out = np.zeros((n, oh, ow, f))
    hh = min(oh, canvas.shape[1] - pt)
    ww = min(ow, canvas.shape[2] - pl)
    out[:, :hh, :ww] = canvas[:, pt:pt + hh, pl:pl + ww]
    return out


def depthwise_conv2d(x, k, strides=(1, 1), padding="valid"):
    """Channel c convolved with k[..., c, j] gives output channel c * multiplier + j."""
    n, h, w, c = x.shape
    kh, kw, _, m = k.shape
    outs = []
    for ch in range(c):
        for j in range(m):
            outs.append(conv2d(x[..., ch:ch + 1], k[:, :, ch:ch + 1, j:j + 1], strides, padding)[..., 0])
    return np.stack(outs, axis=-1)


def pool2d(x, pool, strides, padding, kind):
    """Max or mean over windows; SAME pads with -inf (max) or averages the real values only (mean)."""
    n, h, w, c = x.shape
    (ph, pw), (sh, sw) = pool, strides
    if padding == "same":
        oh, pt, _ = same_pads(h, ph, sh)
        ow, pl, _ = same_pads(w, pw, sw)
    else:
        oh, ow, pt, pl = (h - ph) // sh + 1, (w - pw) // sw + 1, 0, 0
    out = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * sh - pt, j * sw - pl
            win = x[:, max(r0, 0):min(r0 + ph, h), max(c0, 0):min(c0 + pw, w), :]
            out[:, i, j, :] = win.max(axis=(1, 2)) if kind == "max" else win.mean(axis=(1, 2))
    return out


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def simple_rnn(x, kernel, rec, bias, go_backwards=False):
    h = np.zeros((x.shape[0], kernel.shape[1]))
    outs = []
    steps = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    for t in steps:
        h = np.tanh(x[:, t] @ kernel + h @ rec + bias)
        outs.append(h)
    return np.stack(outs, 1), h


def lstm(x, kernel, rec, bias, h=None, c=None, go_backwards=False):
    """Keras's LSTM: gates i, f, c, o; c = f c + i tanh(z_c); h = o tanh(c)."""
    u = rec.shape[0]
    h = np.zeros((x.shape[0], u)) if h is None else h
    c = np.zeros((x.shape[0], u)) if c is None else c
    outs = []
    steps = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    for t in steps:
        z = x[:, t] @ kernel + h @ rec + bias
        i, f, g, o = sigmoid(z[:, :u]), sigmoid(z[:, u:2 * u]), np.tanh(z[:, 2 * u:3 * u]), sigmoid(z[:, 3 * u:])
        c = f * c + i * g
        h = o * np.tanh(c)
        outs.append(h)
    return np.stack(outs, 1), h, c


def gru(x, kernel, rec, bias, reset_after=True):
    """Keras's GRU: gates z, r, h; h = z h_prev + (1 - z) hh."""
    u = rec.shape[0]
    h = np.zeros((x.shape[0], u))
    outs = []
    for t in range(x.shape[1]):
        if reset_after:
            xi = x[:, t] @ kernel + bias[0]
            hr = h @ rec + bias[1]
            z = sigmoid(xi[:, :u] + hr[:, :u])
            r = sigmoid(xi[:, u:2 * u] + hr[:, u:2 * u])
            hh = np.tanh(xi[:, 2 * u:] + r * hr[:, 2 * u:])
        else:
            xi = x[:, t] @ kernel + bias
            z = sigmoid(xi[:, :u] + h @ rec[:, :u])
            r = sigmoid(xi[:, u:2 * u] + h @ rec[:, u:2 * u])
            hh = np.tanh(xi[:, 2 * u:] + (r * h) @ rec[:, 2 * u:])
        h = z * h + (1 - z) * hh
        outs.append(h)
    return np.stack(outs, 1), h
