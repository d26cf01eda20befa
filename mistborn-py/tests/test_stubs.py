"""The shipped stubs (mistborn.pyi) must describe the built module exactly."""

import pathlib
import subprocess
import sys


def test_stubs_match_the_module():
    allowlist = pathlib.Path(__file__).with_name("stubtest-allowlist.txt")
    run = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "mistborn", "--allowlist", str(allowlist)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_typed_package_ships_stubs_and_marker():
    import mistborn

    package = pathlib.Path(mistborn.__file__).parent
    assert (package / "py.typed").exists()
    assert (package / "__init__.pyi").exists()
