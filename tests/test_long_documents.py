"""Long documents (tiny model, the examples/ PDF and HTML page): a document of several passages is learned
passage by passage, each with its own probes and self-edit, and committed as one version with per-passage
results; killed mid-document (SIGKILL), `seal ingest --resume` carries on at the passage where it stopped
and never redoes one before it."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from memory import Store
from tests.conftest import seal

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SETTINGS = ["--set", "ingest.passage_words=60", "--set", "self_edit.max_new_tokens=64"]


def test_a_saved_article_is_learned_passage_by_passage(home, capsys, monkeypatch):
    """The example HTML page: its main text, cut along its headings, each passage with its own probes and
    self-edit, committed as one version with per-passage results."""
    monkeypatch.setenv("COLUMNS", "200")  # progress lines unwrapped
    run = seal(home, *SETTINGS, "ingest", str(EXAMPLES / "harbour_of_tessery.html"), capsys=capsys,
               monkeypatch=monkeypatch)
    out = run.stdout.decode()
    assert run.returncode == 0, run.stderr.decode()
    store = Store.at_home(home)
    [doc] = store.documents()
    doc, passages = store.document(doc.id), store.passages(doc.id)
    n = len(passages)
    assert doc.title == "The Harbour of Tessery" and n >= 3 and "Sign in" not in doc.text
    assert passages[0].text.startswith("# The Harbour of Tessery") and passages[-1].text.startswith("## The harbour festival")
    assert [int(i) for i in re.findall(rf"passage (\d+)/{n}[^:\n]*: sampling", out)] == list(range(1, n + 1))
    # Each passage has its own probes and its own part of the self-edit, written from that passage alone.
    assert {p.passage for p in doc.probes} == set(range(n))
    [trial] = store.trials(doc.id)
    edit = store.self_edit(trial.self_edit_id)
    assert len(edit.parts) == n and all(passage.text in prompt and passages[i - 1].text not in prompt
                                        for i, ((prompt, _), passage) in enumerate(zip(edit.parts, passages)))
    assert {row["passage"] for row in trial.scores["new"]} == set(range(n))
    assert doc.status == "committed" and "probes passage by passage: 1: " in out and f" · {n}: " in out
    store.close()


def test_a_killed_pdf_ingest_resumes_at_its_passage(home):
    """The 30-page example PDF, killed (SIGKILL) while its third passage is generated: the resumed ingest
    begins at the passage where it stopped, generates every later passage once, and commits."""
    env = {**os.environ, "SEAL_HOME": str(home), "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    command = [sys.executable, "-m", "cli", "--set", "ingest.passage_words=320"]  # 24 passages: a shorter test
    first = subprocess.Popen([*command, "ingest", str(EXAMPLES / "vell_valley_gazetteer.pdf")], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    before = []
    for line in first.stdout:  # once passage 3 begins, passages 1 and 2 are checkpointed
        before.append(line)
        if re.search(r"passage 3/\d+", line):
            first.send_signal(signal.SIGKILL)
            break
    first.wait()
    first.stdout.close()
    assert first.returncode == -signal.SIGKILL, "".join(before)

    resumed = subprocess.run([*command, "ingest", "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    store = Store.at_home(home)
    [doc] = store.documents()
    doc, n = store.document(doc.id), len(store.passages(doc.id))
    assert n > 20 and doc.title == "A Gazetteer of the Vell Valley" and doc.status == "committed"
    sampled = [int(i) for i in re.findall(rf"passage (\d+)/{n}[^:\n]*: sampling", resumed.stdout)]
    assert "resuming at generate" in resumed.stdout and sampled and sampled[0] >= 3, resumed.stdout
    assert sampled == list(range(sampled[0], n + 1))  # on from where it stopped, each passage once
    assert {p.passage for p in doc.probes} == set(range(n))
    assert all(len({p.question for p in doc.probes if p.passage == i}) == sum(p.passage == i for p in doc.probes)
               for i in range(n))
    [trial] = store.trials(doc.id)
    assert len(store.self_edit(trial.self_edit_id).parts) == n
    store.close()
