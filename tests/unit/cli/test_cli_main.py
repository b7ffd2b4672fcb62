"""The console script's own options."""

import pytest

from autopatch import __version__
from autopatch.cli.main import main


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"autopatch {__version__}"
