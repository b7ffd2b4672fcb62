"""Every numeric option is checked before any work or write: one error line, exit 2, nothing created."""

from pathlib import Path

import pytest

from autopatch.cli.main import main

TOY = Path(__file__).resolve().parents[3] / "examples" / "data" / "hazelnut_toy"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["search", str(TOY), "--category", "hazelnut_toy", "--bank-fraction", "0"], "--bank-fraction 0.0"),
        (["search", str(TOY), "--category", "hazelnut_toy", "--bank-fraction", "-1"], "--bank-fraction -1.0"),
        (["search", str(TOY), "--category", "hazelnut_toy", "--bank-fraction", "2"], "--bank-fraction 2.0"),
        (["search", str(TOY), "--category", "hazelnut_toy", "--k", "0", "--synthetic", "0"], "--k 0"),
        (["search", str(TOY), "--category", "hazelnut_toy", "--max-gflops", "0"], "--max-gflops 0.0"),
        (["search", str(TOY), "--category", "hazelnut_toy", "--trials", "0"], "--trials 0"),
        (["fit", str(TOY), "--category", "hazelnut_toy", "--backbone", "efficientnet_lite0", "--blocks", "4",
          "--patch-sizes", "3", "--bank-fraction", "1.5"], "bank fraction 1.5"),
        (["predict", "MODEL", str(TOY / "hazelnut_toy" / "test" / "good"), "--batch-size", "0"], "--batch-size 0"),
    ],
)
def test_a_bad_number_is_one_line_and_writes_nothing(tmp_path, capsys, args, named, model_file):
    out = tmp_path / "out"
    args = [model_file if a == "MODEL" else a for a in args]
    assert main([*args, "--out", str(out)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and named in errors[0]
    assert not out.exists()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("m") / "m.pt"
    assert main(["fit", str(TOY), "--category", "hazelnut_toy", "--backbone", "efficientnet_lite0", "--blocks", "4",
                 "--patch-sizes", "3", "--image-size", "64", "--device", "cpu", "--out", str(path)]) == 0
    return str(path)
