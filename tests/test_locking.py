"""The home's writer lock admits one writer at a time, across threads and processes alike."""

import subprocess
import sys
import threading
import time

from seal.locking import writer_lock


def test_second_writer_waits_for_the_first(tmp_path):
    order = []
    entered = threading.Event()

    def first():
        with writer_lock(tmp_path):
            entered.set()
            time.sleep(0.3)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    entered.wait()
    with writer_lock(tmp_path):
        order.append("second in")
    thread.join()
    assert order == ["first done", "second in"]


def test_lock_is_released_when_its_holder_dies(tmp_path):
    """A process killed while holding the lock does not block the next writer."""
    code = f"import os; from pathlib import Path; from seal.locking import writer_lock\n" \
           f"with writer_lock(Path({str(tmp_path)!r})): os._exit(9)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 9
    start = time.perf_counter()
    with writer_lock(tmp_path):
        pass
    assert time.perf_counter() - start < 1.0
