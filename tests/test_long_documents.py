"""Long documents (tiny model): a document of several passages is learned passage by passage, each with its
own probes and self-edit, and committed as one version with per-passage results; killed mid-document
(SIGKILL), `seal ingest --resume` carries on at the passage where it stopped and never redoes one before it."""

import os
import re
import signal
import subprocess
import sys

from memory import Store
from tests.conftest import seal

VILLAGES = [("Ardle", 1612, "Mira Fenn", "barley", "March"), ("Bosk", 1655, "Tobin Vael", "hops", "April"),
            ("Corran", 1701, "Elsa Marr", "flax", "May"), ("Dunmere", 1733, "Ivo Stell", "apples", "June"),
            ("Eskby", 1760, "Ruth Calder", "oats", "July"), ("Fallow", 1788, "Oren Pike", "pears", "August"),
            ("Glenn", 1802, "Ada Quill", "rye", "September"), ("Harrow", 1839, "Lew Brand", "plums", "October")]
LONG = "# The Vell Valley\n\n" + "\n\n".join(
    f"## {name}\n\n{name} is a village of the Vell Valley. It was founded in {year} by {founder}, who built its "
    f"first mill. Its people grow {crop} and hold a harvest festival every {month}."
    for name, year, founder, crop, month in VILLAGES)
SETTINGS = ["--set", "ingest.passage_words=40", "--set", "self_edit.max_new_tokens=160"]


def test_a_long_document_is_learned_passage_by_passage(home, tmp_path, capsys, monkeypatch):
    (tmp_path / "valley.md").write_text(LONG)
    run = seal(home, *SETTINGS, "ingest", str(tmp_path / "valley.md"), capsys=capsys, monkeypatch=monkeypatch)
    out = run.stdout.decode()
    assert run.returncode == 0, run.stderr.decode()
    assert [int(n) for n in re.findall(r"passage (\d)/8[^:\n]*: sampling", out)] == list(range(1, 9))
    store = Store.at_home(home)
    [doc] = store.documents()
    doc = store.document(doc.id)
    passages = store.passages(doc.id)
    assert len(passages) == 8 and passages[0].text.startswith("# The Vell Valley\n\n## Ardle\n\n")
    assert all(p.text.startswith(f"## {v[0]}\n\n") for p, v in zip(passages[1:], VILLAGES[1:]))
    # Each passage has its own probes, asked of that passage's text only.
    assert {p.passage for p in doc.probes} == set(range(8))
    [edit] = [store.self_edit(t.self_edit_id) for t in store.trials(doc.id)]
    assert len(edit.parts) == 8 and all(passage.text in prompt and passages[i - 1].text not in prompt
                                        for i, ((prompt, _), passage) in enumerate(zip(edit.parts, passages)))
    [trial] = store.trials(doc.id)
    assert {row["passage"] for row in trial.scores["new"]} == set(range(8))
    assert store.document(doc.id).status == "committed"
    assert "probes passage by passage: 1: " in out and " · 8: " in out
    store.close()


def test_a_killed_long_ingest_resumes_at_its_passage(home, tmp_path):
    (tmp_path / "valley.md").write_text(LONG)
    env = {**os.environ, "SEAL_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "cli", *SETTINGS]
    first = subprocess.Popen([*command, "ingest", str(tmp_path / "valley.md")], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    before = []
    for line in first.stdout:  # once passage 3 begins, passages 1 and 2 are checkpointed
        before.append(line)
        if "passage 3/8" in line:
            first.send_signal(signal.SIGKILL)
            break
    first.wait()
    first.stdout.close()
    assert first.returncode == -signal.SIGKILL, "".join(before)

    resumed = subprocess.run([*command, "ingest", "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    sampled = [int(n) for n in re.findall(r"passage (\d)/8[^:\n]*: sampling", resumed.stdout)]
    assert "resuming at generate" in resumed.stdout and sampled and sampled[0] >= 3, resumed.stdout
    assert sampled == list(range(sampled[0], 9))  # on from where it stopped, each passage once
    store = Store.at_home(home)
    [doc] = store.documents()
    doc = store.document(doc.id)
    assert store.document(doc.id).status == "committed"
    assert {p.passage for p in doc.probes} == set(range(8))
    assert all(len({p.question for p in doc.probes if p.passage == i}) == sum(p.passage == i for p in doc.probes)
               for i in range(8))
    [edit] = [store.self_edit(t.self_edit_id) for t in store.trials(doc.id)]
    assert len(edit.parts) == 8
    store.close()
