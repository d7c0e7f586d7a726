"""numba kernels compiled on first use, shared by every module that has numba loops (optimizer updates,
conv and pool kernels, the CPU fusion pass): importing numba costs ~0.5 s, so it never happens at import."""


class LazyKernels:
    """Calling it returns {name: compiled kernel}, compiled once by `compile_fn` (which imports numba), or
    None when numba is not installed (callers then take their NumPy path).

    Attributes:
        kernels: the compiled kernels ({} until the first call).
        unavailable: True once numba was found missing; tests set it to force the NumPy path.
    """

    def __init__(self, compile_fn):
        self._compile = compile_fn
        self.kernels = {}
        self.unavailable = False

    def __call__(self):
        if not self.kernels and not self.unavailable:
            try:
                self.kernels.update(self._compile())
            except ImportError:
                self.unavailable = True
        return self.kernels or None
