"""`kinesis motions ...` end to end on the default library."""

from __future__ import annotations

from kinesis.cli import main


def test_list_show_and_split(capsys):
    assert main(["motions", "list", "default:test"]) == 0
    out = capsys.readouterr().out
    assert "gaitanalysis_turn_right" in out and "5 motions in default:test" in out
    assert main(["motions", "list"]) == 0
    rows = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()[1:-1]}
    assert len(rows) == 21 and rows["myosuite_stop"] == "test" and rows["stand_still"] == "train"
    assert sorted(rows.values()).count("test") == 5
    assert main(["motions", "show", "myosuite_walk_slow_a"]) == 0
    out = capsys.readouterr().out
    assert "walk forward slowly" in out and "split            train" in out and "0.75 m/s" in out


def test_unknown_name_lists_close_matches(capsys):
    assert main(["motions", "show", "myosuite_turn_lft"]) == 2
    assert "did you mean myosuite_turn_left" in capsys.readouterr().err


def test_preview_writes_a_png(tmp_path, capsys):
    out = tmp_path / "walk.png"
    assert main(["motions", "preview", "stand_still", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["motions", "preview", "stand_still", "--out", str(tmp_path / "x.jpg")]) == 2


def test_mirror_writes_originals_and_mirror_images_in_the_train_split(tmp_path, capsys):
    from kinesis_tasks.motions import library_splits, load_library

    out = tmp_path / "mirror.npz"
    assert main(["motions", "mirror", "default:train", "--out", str(out)]) == 0
    motions = load_library(str(out))
    assert len(motions) == 32 and list(library_splits(str(out))["train"]) == list(motions)
    assert motions["myosuite_turn_left_mirrored"].text == "turn right while walking"
    assert main(["motions", "mirror", "default:nope", "--out", str(tmp_path / "x.npz")]) == 2
    assert "no split 'nope'" in capsys.readouterr().err
