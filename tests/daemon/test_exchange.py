"""Teach one board, deploy to many: `personalizer export` and `personalizer import`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.daemon_harness import CLASSES
from tests.support.photos import photo_b64
from tests.support.state_db import saved_counts, state_digest


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "personalizer", *args], capture_output=True, text=True, timeout=120
    )


def teach(daemon, counts: dict[str, int]) -> None:
    for name, count in counts.items():
        for index in range(count):
            result = daemon.watch.command(
                "sample", {"class": name, "image": photo_b64(name, index)}
            )
            assert result["ok"], result


def test_export_while_running_and_merge_into_a_running_board(run_daemon, tmp_path: Path) -> None:
    teacher = run_daemon(root="pz/teacher")
    teach(teacher, {"cat": 3, "rocket": 2})
    assert teacher.watch.command("class", {"add": "lamp"})["ok"] is False  # no free slot
    exported = tmp_path / "teacher.db"
    done = cli("export", "--config", str(teacher.process.config), "--out", str(exported))
    assert done.returncode == 0, done.stderr
    assert "exported 5 sample(s)" in done.stdout and exported.stat().st_mode & 0o777 == 0o600
    assert saved_counts(exported) == {"cat": 3, "coffee": 0, "rocket": 2, "astronaut": 0}

    student = run_daemon(
        root="pz/student",
        overrides={
            "state": {"dir": str(tmp_path / "student-state")},
            "model": {"classes": ["cat", "pen"]},
        },
    )
    teach(student, {"cat": 1})
    mark = student.watch.mark()
    done = cli("import", str(exported), "--merge", "--config", str(student.process.config))
    assert done.returncode == 0, done.stderr
    assert "the board now has 6 sample(s)" in done.stdout
    # The running daemon notices and loads it: the file's classes join in free slots.
    status = student.status(since=mark, predicate=lambda s: sum(s["samples"].values()) == 6)
    assert status["samples"] == {"cat": 4, "pen": 0, "rocket": 2}
    assert status["classes"] == ["cat", "pen", "rocket"]
    # And it works on with them: classify and sample the merged classes.
    assert student.watch.command("classify", {"image": photo_b64("rocket")})["ok"]
    assert student.watch.command("sample", {"class": "rocket"})["count"] == 3


def test_import_never_merges_silently_and_refuses_what_does_not_fit(
    run_daemon, tmp_path: Path
) -> None:
    board = run_daemon(root="pz/board")
    teach(board, {"coffee": 2})
    config = str(board.process.config)
    done = cli("import", str(tmp_path / "nothing.db"), "--config", config)
    assert done.returncode == 2 and "--replace" in done.stderr and "--merge" in done.stderr
    before = state_digest(board.state_file)

    missing = cli("import", str(tmp_path / "nothing.db"), "--merge", "--config", config)
    assert missing.returncode == 1 and "no such file" in missing.stderr
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a state file" * 100)
    refused = cli("import", str(junk), "--replace", "--config", config)
    assert refused.returncode == 1 and "is not a state file" in refused.stderr, refused.stderr
    assert "nothing was changed" in refused.stderr
    assert state_digest(board.state_file) == before
    assert board.watch.command("sample", {"class": "coffee"})["count"] == 3


def test_replace_into_a_stopped_board_takes_everything(run_daemon, tmp_path: Path) -> None:
    teacher = run_daemon(root="pz/teacher2")
    teach(teacher, dict.fromkeys(CLASSES, 2))
    assert teacher.watch.command("class", {"rename": "coffee", "to": "mug"})["ok"]
    assert teacher.watch.command("train", {"action": "start"})["ok"]
    teacher.watch.wait_for("loss", timeout=30)
    assert teacher.watch.command("train", {"action": "stop"})["ok"]
    exported = tmp_path / "teacher.db"
    assert (
        cli("export", "--config", str(teacher.process.config), "--out", str(exported)).returncode
        == 0
    )

    student = run_daemon(root="pz/student2", overrides={"state": {"dir": str(tmp_path / "s2")}})
    teach(student, {"astronaut": 1})
    assert student.process.terminate()[0] == 0
    done = cli("import", str(exported), "--replace", "--config", str(student.process.config))
    assert done.returncode == 0, done.stderr
    again = run_daemon(root="pz/student2b", overrides={"state": {"dir": str(tmp_path / "s2")}})
    status = again.status()
    assert status["classes"] == ["cat", "mug", "rocket", "astronaut"]
    assert status["samples"] == {"cat": 2, "mug": 2, "rocket": 2, "astronaut": 2}
    expected = teacher.watch.command("classify", {"image": photo_b64("rocket")})["scores"]
    got = again.watch.command("classify", {"image": photo_b64("rocket")})["scores"]
    assert got == expected, "the trained head came along"
