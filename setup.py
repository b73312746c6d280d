"""Build of the C extension ``parsers._access_encoder`` (the metadata lives in pyproject.toml)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "parsers._access_encoder",
            ["parsers/_access_encoder.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra"],
            # Without a compiler logpipe still installs; the consumer then parses every line in Python
            # and logs NativeEncoderUnavailable (the tests fail: test_native_extension_is_built).
            optional=True,
        )
    ]
)
