"""The GPU backend: CuPy behind a small seam, so `import kestimator` never needs CuPy.

    backend.py    the Backend: device contexts, allocation, copies, memory limits, compiled kernels
    placement.py  which device each op of a Plan runs on, and where the Session keeps each variable
    support.py    which ops can run on a GPU and which inputs stay on the host
    fusion.py     Plan passes: elementwise chains and the moments pattern become one kernel each
    kernels.py    hand-written CUDA: fused optimizer updates, sparse softmax cross-entropy, moments
    histogram.py  boosted-tree histograms with atomic adds

How it is used: ops placed on `/device:GPU:N` (`with ke.device(...)`, or `devices.set_default_device`)
run their kernels against `Backend.xp`; see docs/GPU.md. `devices.register_backend("GPU", module)`
swaps the array module (the tests use a NumPy-backed stand-in). Modules here are imported on demand: the
CPU path loads only placement.py and support.py (no CuPy, no backend).
"""
