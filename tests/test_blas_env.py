"""OpenBLAS's environment for the command: ``train`` re-executes itself once with the short wait unless the user chose
one (or pinned one thread), and the settings that slow OpenBLAS are named once on stderr, never changed."""

import os
import shlex
import subprocess
import sys

import pytest

from convscope import blas_env, cli

ALL_VARIABLES = (*blas_env.WAIT_VARIABLES, *blas_env.THREAD_COUNT_VARIABLES, *blas_env.SLOW_SETTINGS)


def test_train_gets_the_short_wait():
    environ = {"PATH": "/bin"}
    assert blas_env.waiting_environment("train", environ) == {"PATH": "/bin", "OPENBLAS_THREAD_TIMEOUT": "10"}
    assert environ == {"PATH": "/bin"}  # a new mapping: the caller's is left as it was


@pytest.mark.parametrize("environ", [
    {"OPENBLAS_THREAD_TIMEOUT": "28"},  # the user's own wait, whatever it is
    {"GOTO_THREAD_TIMEOUT": "20"},
    {"OPENBLAS_NUM_THREADS": "1"},  # one thread: no worker waits
    {"OMP_NUM_THREADS": "1"},
    {"GOTO_NUM_THREADS": " 1 "},
])
def test_no_short_wait_where_the_user_decided(environ):
    assert blas_env.waiting_environment("train", environ) is None


def test_the_thread_count_read_is_openblass_own():
    # OpenBLAS reads OPENBLAS_NUM_THREADS before OMP_NUM_THREADS: two threads here, so they wait.
    environ = {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "1"}
    assert blas_env.waiting_environment("train", environ)["OPENBLAS_THREAD_TIMEOUT"] == "10"


@pytest.mark.parametrize("command", ["summary", "predict", "show", "explore"])
def test_other_commands_run_as_they_are(command):
    assert blas_env.waiting_environment(command, {}) is None


def test_no_note_without_the_settings():
    assert blas_env.slow_blas_notes({"PATH": "/bin", "OPENBLAS_CORETYPE": ""}, ["train"]) == []


def test_notes_name_each_setting_its_cost_and_the_command_without_it():
    environ = {"OPENBLAS_CORETYPE": "Prescott", "OPENBLAS_L2_SIZE": "256"}
    coretype, l2 = blas_env.slow_blas_notes(environ, ["train", "--out", "my runs/a"])
    assert coretype.startswith("convscope: note: OPENBLAS_CORETYPE=Prescott is set, so OpenBLAS runs the kernels")
    assert "2.3x with Prescott" in coretype
    assert coretype.endswith("run without it: env -u OPENBLAS_CORETYPE convscope train --out 'my runs/a'")
    assert l2.startswith("convscope: note: OPENBLAS_L2_SIZE=256 is set, so OpenBLAS sizes its matrix blocks")
    assert l2.endswith("env -u OPENBLAS_L2_SIZE convscope train --out 'my runs/a'")
    assert "\n" not in coretype + l2


def test_main_prints_the_note_once_and_changes_nothing(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Sandybridge")
    assert cli.main(["summary", str(tmp_path / "missing.convscope")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0].startswith("convscope: note: OPENBLAS_CORETYPE=Sandybridge is set"), err
    assert err[0].endswith(shlex.join(["env", "-u", "OPENBLAS_CORETYPE", "convscope", "summary",
                                       str(tmp_path / "missing.convscope")]))
    assert "does not exist" in err[1]
    assert os.environ["OPENBLAS_CORETYPE"] == "Sandybridge"


def test_main_prints_no_note_without_the_settings(monkeypatch, capsys, tmp_path):
    for name in blas_env.SLOW_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["summary", str(tmp_path / "missing.convscope")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "does not exist" in err[0], err


# The real command line, re-executed: the script prints the wait it sees before it calls main(), so each process
# that runs it says so. ``train --resume`` of a missing folder fails right after the re-execution, before any work.
SCRIPT = ("import os, sys\n"
          "print('wait', os.environ.get('OPENBLAS_THREAD_TIMEOUT'), flush=True)\n"
          "from convscope.cli import main\n"
          "sys.exit(main())\n")


@pytest.mark.skipif(os.name != "posix", reason="the command re-executes itself only where exec replaces the process")
@pytest.mark.parametrize("settings, waits, notes", [
    ({"OPENBLAS_CORETYPE": "Haswell"}, ["wait None", "wait 10"], 1),  # once more with the short wait; one note
    ({"OPENBLAS_NUM_THREADS": "1"}, ["wait None"], 0),  # one thread: no second start
    ({"OPENBLAS_THREAD_TIMEOUT": "20"}, ["wait 20"], 0),  # the user's wait is kept
])
def test_train_reexecutes_once_with_the_short_wait(settings, waits, notes, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ALL_VARIABLES}
    env.update(settings, PYTHONIOENCODING="utf-8")
    missing = tmp_path / "no-run"
    result = subprocess.run([sys.executable, "-c", SCRIPT, "train", "--resume", str(missing)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stdout.splitlines() == waits
    err = result.stderr.splitlines()
    assert sum(line.startswith("convscope: note: ") for line in err) == notes, err
    assert [line for line in err if not line.startswith("convscope: note: ")] == [
        f"convscope: error: {str(missing)!r} is not a run folder (no config.json)"], err
