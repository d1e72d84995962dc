"""The copies of git's config files the sandbox shows without credentials, and their folder.

``agentflow.sandbox`` writes each config that holds a credential (``[credential]``, an
``extraheader``, a URL's ``user:password``) as a copy in a folder of its own below ``$TMPDIR``, and
binds the copy over the original in every sandbox. The folder was removed by an ``atexit`` handler
only: a process killed with ``SIGKILL`` or ``SIGTERM`` (a cancelled CI job, ``timeout``, a test that
kills a build) runs none, and every such process left its folder, with the sanitized copies of the
user's configs, behind (54 in ``/tmp`` after a day of tests). And a forked child inherited the
handler: its exit removed its parent's folder while the parent still bound copies from it, so the
parent's next sandbox failed to start (``bwrap: Can't find source path``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # this clone's agentflow
CREDENTIALED = '[credential "https://example.com"]\n\thelper = "!echo password=hunter2"\n[alias]\n\tlg = log\n'


def _env(tmp_path: Path) -> dict[str, str]:
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    config = tmp_path / "gitconfig"
    config.write_text(CREDENTIALED)
    return {**os.environ, "TMPDIR": str(temp), "RT_CONFIG": str(config), "PYTHONPATH": str(ROOT)}


def _folders(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "tmp").glob("agentflow-gitconfig-*"))


MAKE_COPY = "from agentflow.sandbox import sanitized_git_config; import os\nprint(sanitized_git_config(os.environ['RT_CONFIG']), flush=True)\n"


def test_a_killed_process_leaves_no_folder_once_another_makes_its_copy(tmp_path: Path) -> None:
    env = _env(tmp_path)
    for sig in (signal.SIGKILL, signal.SIGTERM):
        proc = subprocess.Popen(
            [sys.executable, "-c", MAKE_COPY + "import time; time.sleep(60)"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        copy = Path(proc.stdout.readline().strip())
        assert copy.is_file() and "hunter2" not in copy.read_text()
        proc.send_signal(sig)
        proc.wait(timeout=30)
        proc.stdout.close()
        assert copy.parent.is_dir()  # no atexit handler ran
    assert _folders(tmp_path)  # the last one killed left its folder (the SIGTERM one)

    out = subprocess.run(
        [sys.executable, "-c", MAKE_COPY + "import time; time.sleep(0)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )

    assert out.stdout.strip()  # it made its own copy, and its exit removed it
    assert _folders(tmp_path) == [], [p.name for p in _folders(tmp_path)]


def test_a_forked_child_does_not_remove_its_parents_copies(tmp_path: Path) -> None:
    script = MAKE_COPY + textwrap.dedent(
        """
        import sys
        first = sanitized_git_config(os.environ['RT_CONFIG'])
        pid = os.fork()
        if pid == 0:
            child = sanitized_git_config(os.environ['RT_CONFIG'])
            print("child", child, flush=True)
            sys.exit(0)  # an ordinary interpreter exit: atexit handlers run in the child
        os.waitpid(pid, 0)
        print("parent-still-has-copy", os.path.isfile(first), flush=True)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], env=_env(tmp_path), capture_output=True, text=True, check=True)

    assert "parent-still-has-copy True" in out.stdout, out.stdout + out.stderr
    child = next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("child"))
    first = out.stdout.splitlines()[0]
    assert Path(child).parent != Path(first).parent  # the child's copies are its own
    assert _folders(tmp_path) == []  # both exits removed their own folder


def test_a_live_processs_folder_and_other_files_are_left_alone(tmp_path: Path) -> None:
    env = _env(tmp_path)
    other = tmp_path / "tmp" / "agentflow-gitconfig-unrelated-file"
    other.write_text("not a folder")
    proc = subprocess.Popen(
        [sys.executable, "-c", MAKE_COPY + "import time; time.sleep(60)"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        live = Path(proc.stdout.readline().strip())
        subprocess.run([sys.executable, "-c", MAKE_COPY], env=env, capture_output=True, check=True)
        assert live.is_file()  # its process still runs
        assert other.is_file()
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()


def test_threads_starting_sandboxes_at_once_leave_no_empty_folder(tmp_path: Path) -> None:
    """The empty folders: two threads (a ``-j`` build's runs) making their first copies at once each
    made a folder, and only the first was registered for removal (37 of the 54 were empty)."""
    env = _env(tmp_path)
    second = tmp_path / "gitconfig2"
    second.write_text(CREDENTIALED.replace("lg", "st"))
    script = textwrap.dedent(
        f"""
        import os, tempfile, threading
        from agentflow import sandbox
        barrier, made = threading.Barrier(2, timeout=3), tempfile.mkdtemp

        def mkdtemp(*args, **kwargs):  # both threads inside at once, where the old code let them be
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass  # the other thread waits for this one's folder instead
            return made(*args, **kwargs)

        tempfile.mkdtemp = mkdtemp
        threads = [threading.Thread(target=sandbox.sanitized_git_config, args=(p,))
                   for p in (os.environ["RT_CONFIG"], {str(second)!r})]
        [t.start() for t in threads]
        [t.join() for t in threads]
        """
    )
    subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)

    assert _folders(tmp_path) == [], [(p.name, list(p.iterdir())) for p in _folders(tmp_path)]
