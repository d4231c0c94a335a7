"""A child process writing under durability="sync" is killed with SIGKILL;
every acknowledged write must be there after reopening."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import keyval

CHILD = r"""
import sys, keyval
db = keyval.open(sys.argv[1], segment_size=64 << 10)
i = 0
while True:
    with db.batch() as b:
        b[b"k%06d" % i] = b"v%06d" % i
        b[b"m%06d" % i] = b"v%06d" % i
    print("ACK", i, flush=True)
    i += 1
"""


def test_sigkill_child_writer(tmp_path: Path) -> None:
    d = tmp_path / "d"
    for round_ in range(3):
        p = subprocess.Popen([sys.executable, "-c", CHILD, str(d)], stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None
        acked = -1
        deadline = time.monotonic() + 0.3 + 0.2 * round_
        for line in p.stdout:
            acked = int(line.split()[1])
            if time.monotonic() > deadline:
                break
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert acked >= 0, "the child acknowledged nothing"
        with keyval.open(d) as db:
            for i in range(acked + 1):
                assert db[b"k%06d" % i] == b"v%06d" % i
                assert db[b"m%06d" % i] == b"v%06d" % i
            assert len(db) % 2 == 0, "a batch was torn"


DURABILITY_CHILD = r"""
import os, signal, sys, keyval
db = keyval.open(sys.argv[1], durability="buffered", segment_size=64 << 10)
db[b"a"] = b"buffered"
db.set(b"b", b"os", durability="os")
db[b"c"] = b"buffered"
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_per_write_durability_across_sigkill(tmp_path: Path) -> None:
    """On a buffered store, a write at durability="os" survives the process
    being killed and carries the buffered write before it; the buffered
    write after it is lost (so the levels are told apart)."""
    d = tmp_path / "d"
    r = subprocess.run([sys.executable, "-c", DURABILITY_CHILD, str(d)], capture_output=True, text=True)
    assert r.returncode == -signal.SIGKILL, r.stderr
    with keyval.open(d) as db:
        assert b"a" in db
        assert db[b"b"] == b"os"
        assert b"c" not in db
