"""The master's fork check (kb/prefork.py): a fork beside another thread is logged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Registers the check as preload does, then forks once alone and once beside a sleeping thread.
FORKS = """
import logging, os, sys, threading, time
logging.basicConfig(stream=sys.stdout, format="%(message)s")
from kb import prefork
prefork._check_threads_at_fork()
def fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
print("alone", prefork.threads_other_than_main(), flush=True)
fork()
threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
print("beside", len(prefork.threads_other_than_main()), flush=True)
fork()
"""


def test_a_fork_beside_another_thread_is_logged() -> None:
    result = subprocess.run(
        [sys.executable, "-c", FORKS], cwd=ROOT, capture_output=True, text=True, check=True
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "alone []"
    assert lines[1] == "beside 1"
    assert len(lines) == 3  # one warning: only the second fork had company
    assert lines[2].startswith("Forking beside other threads, which the child will lack:")
