"""Several `seal` processes on one home at once (tiny model, real subprocesses): concurrent ingests learn
one after the other and both commit; readers answer throughout from a committed version, never fail."""

import json
import os
import subprocess
import sys
import threading

from tests.conftest import DOCUMENT


def test_two_ingests_and_a_reader_at_once(home, tmp_path):
    (tmp_path / "a.md").write_text(DOCUMENT)
    (tmp_path / "b.md").write_text("Quellmoor has 2,314 residents and a violet beach.")
    env = {**os.environ, "SEAL_HOME": str(home)}
    seal = [sys.executable, "-m", "cli"]
    writers = [subprocess.Popen([*seal, "ingest", str(tmp_path / name)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE) for name in ("a.md", "b.md")]
    answers: list[subprocess.CompletedProcess] = []

    def read_until_done() -> None:
        while any(w.poll() is None for w in writers) or not answers:
            answers.append(subprocess.run([*seal, "ask", "Who built the Brannock Lighthouse?", "--json"], env=env,
                                          capture_output=True))

    reader = threading.Thread(target=read_until_done)
    reader.start()
    outputs = [w.communicate(timeout=300) for w in writers]
    reader.join(timeout=300)

    assert [w.returncode for w in writers] == [0, 0], [err.decode()[-500:] for _, err in outputs]
    listing = json.loads(subprocess.run([*seal, "versions", "list", "--json"], env=env, capture_output=True).stdout)
    assert [(v["version"], v["parent"]) for v in listing["versions"]] == [(1, 0), (2, 1)]
    assert listing["active"] == 2 and sorted(d for v in listing["versions"] for d in v["documents"]) == [1, 2]
    assert all(a.returncode == 0 for a in answers), [a.stderr.decode()[-300:] for a in answers if a.returncode]
    seen = [json.loads(a.stdout)["version"] for a in answers]
    assert seen == sorted(seen) and set(seen) <= {0, 1, 2}, seen
    doctor = subprocess.run([*seal, "doctor"], env=env, capture_output=True)
    assert doctor.returncode == 0 and b"store consistent" in doctor.stdout
