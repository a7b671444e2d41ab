"""Build the one compiled piece of warmstart: the word-vector training kernels.

The library is plain C loaded with ctypes (see src/warmstart/vectors/kernels.py); setuptools
builds it like an extension module so that `pip install` compiles it on any platform.
"""

import sys

from setuptools import Extension, setup

# Vectorised float reductions need reassociation; -ffast-math is avoided because it would
# also flush denormals to zero for the whole process when the library loads.
flags = [] if sys.platform == "win32" else [
    "-O3", "-fno-math-errno", "-fno-trapping-math", "-fno-signed-zeros", "-fassociative-math",
    "-funroll-loops", "-std=c99",
]

setup(
    ext_modules=[
        Extension("warmstart.vectors._kernels", sources=["src/warmstart/vectors/_kernels.c"],
                  extra_compile_args=flags),
    ],
)
