"""Named crash points for the kill harness (`python -m benchmarks.crash`): with SEAL_FAILPOINT=<name> in the
environment, the process SIGKILLs itself the moment it reaches that point — between two writes that a
timed kill would almost never separate. Without the variable a failpoint is one dictionary lookup."""

from __future__ import annotations

import os
import signal

POINTS = {
    "store.commit.flushed": "version rows written inside the open database transaction",
    "commit.recorded": "database committed, pointer file not yet written",
    "adapters.write.renamed": "version folder in place, database not yet committed",
    "verify.recorded": "trial recorded, graph checkpoint not yet saved",
    "adapters.write.partial": "version folder half-copied into its temporary name",
    "adapters.pointer.temporary": "new pointer written to its temporary file, not yet renamed",
}


def failpoint(name: str) -> None:
    if os.environ.get("SEAL_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
