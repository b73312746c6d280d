"""Build of the C extension ``parsers._access_encoder`` (the metadata lives in pyproject.toml).

The extension is the consumer's fast path for access lines; no other role loads it. ``LOGPIPE_NATIVE``
chooses what a build does with it:

- unset: built when a C compiler is there; without one logpipe still installs and the consumer parses
  every line in Python, logging NativeEncoderUnavailable (the tests fail: test_native_extension_is_built);
- ``1``: built, and a build without a compiler fails (the consumer image);
- ``0``: not built — a pure-Python wheel with no compiler needed (the shipper and tools installs).
"""

import os

from setuptools import Extension, setup

NATIVE = os.environ.get("LOGPIPE_NATIVE", "").strip()
if NATIVE not in ("", "0", "1"):
    raise SystemExit(f"LOGPIPE_NATIVE={NATIVE!r}: use 1 (build the C extension), 0 (skip it) or leave it unset")

setup(
    ext_modules=[]
    if NATIVE == "0"
    else [
        Extension(
            "parsers._access_encoder",
            ["parsers/_access_encoder.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra"],
            optional=NATIVE != "1",
        )
    ]
)
