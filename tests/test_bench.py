"""`seal bench`: the statistics the tables quote, the SQuAD splits, bad input, and each benchmark run
end to end through the CLI on the tiny model (the real-model smoke runs are in test_real_model.py)."""

from __future__ import annotations

import hashlib
import json
import math
import random
import statistics

import pytest

from agent.probes import GENERAL_PROBES
from benchmarks import continual, report, squad
from benchmarks import tasks as tasks_bench
from cli.main import main
from model_runtime.lm import MIN_SHARED_PREFIX
from model_runtime.training import native_bf16
from seal.errors import InputError

PASSAGES = [{"title": f"Lighthouse {i}", "context": f"The lighthouse number {i} was built in {1800 + i} by Morwen Hale.",
             "questions": [{"question": f"When was lighthouse {i} built?", "answer": str(1800 + i)},
                           {"question": f"Who built lighthouse {i}?", "answer": "Morwen Hale"}]} for i in range(6)]


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    import sys

    old = sys.argv
    sys.argv = ["seal", *args]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code or 0
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return code, out.out, out.err


def interrupted(args: list[str], capsys, monkeypatch, module, name: str) -> None:
    """Run the CLI with `module.name` raising KeyboardInterrupt (Ctrl-C) on its second call."""
    original, calls = getattr(module, name), []

    def stop_at_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*a, **k)

    monkeypatch.setattr(module, name, stop_at_second)
    assert run_cli(args, capsys)[0] != 0
    monkeypatch.setattr(module, name, original)


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(PASSAGES))
    return path


def test_wilson_interval_matches_known_values():
    """The 95 % Wilson interval of 5/10 is [0.237, 0.763]; of 0/10 it starts at 0."""
    p, low, high = report.wilson(5, 10)
    assert (p, round(low, 3), round(high, 3)) == (0.5, 0.237, 0.763)
    assert report.wilson(0, 10)[1] == 0.0 and round(report.wilson(0, 10)[2], 3) == 0.278


def test_mean_interval_is_normal_approximation():
    mean, low, high = report.mean_interval([0.0, 1.0, 0.5, 0.5])
    assert mean == 0.5 and math.isclose(high - mean, 1.959964 * 0.40825 / 2, rel_tol=1e-4)
    assert report.mean_interval([0.0, 0.0, 0.2])[1] == 0.0, "an accuracy interval must not go below 0"


def test_splits_follow_the_data_readme(data):
    """eval = the first 200 after random.seed(42) shuffle, train = the rest (here the file is small,
    so eval is all of it and train is empty)."""
    records = list(PASSAGES)
    random.seed(42)
    random.shuffle(records)
    got = squad.split(squad.load(data), "eval", 6)
    assert [p.title for p in got] == [r["title"] for r in records]
    with pytest.raises(InputError, match="train split has 0 passages"):
        squad.split(squad.load(data), "train", 1)


@pytest.mark.parametrize("content, message", [
    ("not json", "not readable UTF-8 JSON"),
    ("[]", "non-empty JSON list"),
    ('[{"context": "x", "questions": [{"question": "q"}]}]', "record 0 needs"),
])
def test_bad_data_file_is_one_line_error(tmp_path, home, capsys, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    code, _, err = run_cli(["bench", "knowledge", "--data", str(path), "--n", "1"], capsys)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err


def test_missing_data_file_says_where_the_data_is(home, tmp_path, capsys):
    code, _, err = run_cli(["bench", "knowledge", "--data", str(tmp_path / "none.json")], capsys)
    assert code == 1 and "squad_val.json" in err, err


def test_measures_of_a_known_matrix():
    """Diagonal = just-after accuracy, last row = final, documents ending below row 0 are listed."""
    m = [[0.2, 0.4, 0.0], [0.6, None, None], [0.4, 0.8, None], [0.1, 0.6, 0.5]]
    got = continual.measures(m)
    assert math.isclose(got["just_after"], (0.6 + 0.8 + 0.5) / 3) and math.isclose(got["final"], 0.4)
    assert got["below_baseline"] == [1] and math.isclose(got["retained"], 0.4 / (1.9 / 3))


def test_knowledge_summary_pairs_each_condition_with_passage_only_training():
    """The knowledge target compares passage + self-edit with passage-only training passage by passage:
    the paired difference is the mean of per-passage differences, not the difference of two means' rows."""
    from benchmarks import knowledge

    edit = knowledge.self_edit_label("rewrite")
    accuracies = [{knowledge.NONE: 0.0, knowledge.IN_CONTEXT: 0.5, knowledge.PASSAGE: 0.25, edit: 0.5},
                  {knowledge.NONE: 0.0, knowledge.IN_CONTEXT: 1.0, knowledge.PASSAGE: 0.5, edit: 0.5},
                  {knowledge.NONE: 0.5, knowledge.IN_CONTEXT: 1.0, knowledge.PASSAGE: 1.0, edit: 0.75}]
    records = [{"conditions": {label: {"accuracy": a, "correct": [a >= 0.5], "f1": [a]} for label, a in r.items()}}
               for r in accuracies]
    rows = {s["condition"]: s for s in knowledge.summarize(records, list(accuracies[0]))}
    mean, low, high = rows[edit]["vs_passage"]
    assert mean == pytest.approx(0.0) and low < 0 < high  # +0.25, 0, -0.25
    assert rows[knowledge.PASSAGE]["vs_passage"] == (0.0, 0.0, 0.0)
    assert rows[edit]["reward"][0] == pytest.approx((0.5 + 0.5 + 0.25) / 3)
    table = knowledge.markdown(list(rows.values()), 3, "seal bench knowledge --n 3")
    assert "vs passage only, points [95% CI]" in table
    assert f"| {knowledge.PASSAGE} |" in table and "| 0.0 [-" in table


def test_selection_summary_sets_the_probe_choice_beside_first_random_and_oracle():
    """A --select arm is read against the first sample, a random one, the one chosen on the other half of
    the gold questions and the gold-best one, each paired with passage-only training; ties on the probes
    and agreement with the gold questions are counted."""
    from benchmarks import knowledge

    def record(passage: float, chosen: int, candidates: list[tuple[float, float, list[bool]]]) -> dict:
        scored = [{"probe_accuracy": p, "probe_f1": f, "accuracy": sum(c) / len(c), "correct": c} for p, f, c in candidates]
        return {"conditions": {knowledge.PASSAGE: {"accuracy": passage},
                               "best": {"accuracy": scored[chosen]["accuracy"], "chosen": chosen, "candidates": scored}}}

    T, F = True, False
    records = [record(0.25, 1, [(0.0, 0.1, [T, F, F, F]), (0.5, 0.4, [T, T, T, F]), (0.0, 0.2, [T, T, F, F])]),  # chose the gold-best
               record(0.5, 0, [(0.2, 0.3, [T, F, T, F]), (0.2, 0.3, [T, T, T, T]), (0.2, 0.3, [F, F, F, F])]),  # probes tie: the first
               record(0.0, 2, [(0.0, 0.0, [F, F, F, F]), (0.0, 0.0, [F, F, F, F]), (0.4, 0.5, [F, F, F, F])])]  # gold all equal
    got = knowledge.selection(records, "best")
    vs = {name: interval[0] for name, interval in got["vs_passage"].items()}
    assert list(vs) == list(knowledge.CHOICES) and got["k"] == 3
    first, chosen, random, halves, oracle = vs.values()
    assert first == pytest.approx((0.0 + 0.0 + 0.0) / 3) and chosen == pytest.approx((0.5 + 0.0 + 0.0) / 3)
    assert random == pytest.approx((0.25 + 0.0 + 0.0) / 3) and oracle == pytest.approx((0.5 + 0.5 + 0.0) / 3)
    # Passage 1: odd questions pick #2 and #3 (tied), which score 2 and 1 of the even ones; even questions
    # pick #2, which scores 1 of the odd ones: 2.5 of 4. Passage 2: #2 (2 of 2), then #1 and #2 tied (0, 2): 3 of 4.
    assert halves == pytest.approx((2.5 / 4 - 0.25 + 3 / 4 - 0.5 + 0.0) / 3)
    assert (got["probes_tied"], got["gold_differs"], got["chose_a_gold_best"]) == (1, 2, 1)
    table = knowledge.selection_markdown(got, 3)
    assert "| chosen by probes | 16.7 [" in table and "tie on 1 of 3 passages" in table and "on 1 of those" in table


def test_resuming_a_select_run_that_recorded_no_candidate_answers_is_a_one_line_error(tmp_path):
    """A --select run written before candidates recorded their gold answers cannot be summarised on
    resume: it is refused before any passage is scored."""
    from benchmarks import knowledge
    from seal.errors import InputError

    provenance = {"arguments": {"select": 2}, "config": {"train": {"epochs": 6}}}
    arm = {"accuracy": 0.5, "chosen": 0, "candidates": [{"accuracy": 0.5, "correct": [True, False]}, {"accuracy": 0.0}]}
    path = tmp_path / "knowledge-eval-n2-select2.json"

    def write() -> None:
        path.write_text(json.dumps({**provenance, "self_edits": [], "records": [{"conditions": {"best": arm}}]}))

    write()
    with pytest.raises(InputError, match="candidate answers") as refused:
        knowledge.resumable(path, provenance)
    assert "\n" not in str(refused.value)
    arm["candidates"][1]["correct"] = [False, False]
    write()
    assert knowledge.resumable(path, provenance)["records"][0]["conditions"]["best"] == arm


def test_bench_knowledge_on_tiny_model(home, data, tmp_path, capsys):
    """Every condition is scored on the same passages; JSON, table and plot are written."""
    out = tmp_path / "results"
    code, stdout, err = run_cli(["bench", "knowledge", "--data", str(data), "--n", "2", "--formats", "rewrite,self_qa",
                                 "--out", str(out)], capsys)
    assert code == 0, err
    result = json.loads((out / "knowledge-eval-n2.json").read_text())
    labels = [s["condition"] for s in result["summary"]]
    rewrite, self_qa = (f"LoRA: passage + {f}, faithful sentences only" for f in ("rewrite", "self_qa"))
    distilled = ["distill: passage + rewrite", "distill: passage + self_qa"]
    assert labels == ["no adaptation", "passage in context", "retrieval, base model", "retrieval + adapter",
                      "LoRA: passage only", rewrite, self_qa, *distilled]
    assert result["complete"] and result["summary"][0]["questions"] == 4
    retrieval, both = result["summary"][2:4]
    assert retrieval["recall"][0] == 1.0 and both["adapter"] == distilled[0] and len(both["vs_retrieval"]) == 3
    assert "Retrieval recall@k" in (out / "knowledge-eval-n2.md").read_text()
    for record in result["records"]:
        assert set(record["conditions"]) == set(labels)
        arms = record["conditions"]
        # Retrieval searched the corpus for each question.
        assert len(arms["retrieval, base model"]["recalled"]) == len(record["questions"])
        assert arms[rewrite]["train_tokens"] > 0 and arms[distilled[0]]["train_tokens"] > arms[rewrite]["train_tokens"]
        # Every trained arm is asked the general-ability set and measured for drift from the base model.
        assert all(0 <= arms[label]["general"] <= 1 and arms[label]["drift"] >= 0 for label in labels[4:])
        assert 0 <= arms["no adaptation"]["general"] <= 1
    assert result["git"] and result["machine"]["cpus"] and result["config"]["train"]["rank"] == 16
    assert (out / "knowledge-eval-n2.png").stat().st_size > 0 and "Knowledge incorporation" in stdout


def test_bench_knowledge_ablates_the_parts_it_is_told(home, data, tmp_path, capsys):
    """--ablate adds the distill arm with each named part turned off; an unknown part is a one-line error."""
    out = tmp_path / "results"
    code, _, err = run_cli(["bench", "knowledge", "--data", str(data), "--n", "1", "--formats", "rewrite",
                            "--ablate", "questions,retention", "--out", str(out)], capsys)
    assert code == 0, err
    result = json.loads((out / "knowledge-eval-n1-ablate-questions-retention.json").read_text())
    assert [s["condition"] for s in result["summary"]][-3:] == [
        "distill: passage + rewrite", "distill: passage + rewrite, without questions",
        "distill: passage + rewrite, without retention"]
    arms = result["records"][0]["conditions"]
    assert arms["distill: passage + rewrite, without retention"]["train_tokens"] < arms["distill: passage + rewrite"]["train_tokens"]
    code, _, err = run_cli(["bench", "knowledge", "--data", str(data), "--n", "1", "--ablate", "nonsense",
                            "--out", str(out)], capsys)
    assert code == 1 and "--ablate nonsense" in err and len(err.strip().splitlines()) == 1


def test_bench_knowledge_faithful_arm_trains_on_the_same_self_edit_filtered(home, data, tmp_path, capsys):
    """--faithful adds, per format, the same self-edit with only its faithful sentences kept: never more
    training sequences than the self-edit as written, and at least the passage's own."""
    out = tmp_path / "results"
    code, _, err = run_cli(["bench", "knowledge", "--data", str(data), "--n", "2", "--formats", "rewrite",
                            "--faithful", "--out", str(out)], capsys)
    assert code == 0, err
    result = json.loads((out / "knowledge-eval-n2-faithful.json").read_text())
    whole, filtered = "LoRA: passage + rewrite", "LoRA: passage + rewrite, faithful sentences only"
    assert [s["condition"] for s in result["summary"]][5:7] == [whole, filtered] and result["arguments"]["faithful"]
    for record in result["records"]:
        arms = record["conditions"]
        assert arms[filtered]["self_edit"] == arms[whole]["self_edit"]
        assert arms["LoRA: passage only"]["sequences"] <= arms[filtered]["sequences"] <= arms[whole]["sequences"]


def test_bench_knowledge_pool_scores_the_faithful_sentences_of_several_self_edits(home, data, tmp_path, capsys):
    """--pool 3 adds, per format, one arm trained on the faithful sentences pooled from 3 self-edits, the
    first of them the one the ordinary arm trains on: every pooled sentence is faithful to its passage, and
    the pool keeps every faithful sentence of that one."""
    from agent.faithful import faithful, faithful_part, sentences
    from agent.prompts import parse_paragraphs
    from benchmarks import squad

    out = tmp_path / "results"
    code, _, err = run_cli(["bench", "knowledge", "--data", str(data), "--n", "2", "--formats", "rewrite",
                            "--pool", "3", "--out", str(out)], capsys)
    assert code == 0, err
    result = json.loads((out / "knowledge-eval-n2-pool3.json").read_text())
    single, pooled = "LoRA: passage + rewrite, faithful sentences only", "LoRA: passage + rewrite, faithful sentences pooled from 3"
    assert [s["condition"] for s in result["summary"]][4:] == ["LoRA: passage only", single, "distill: passage + rewrite", pooled]
    passages = squad.split(squad.load(data), "eval", 2)
    for passage, (fmt, text), record in zip(passages, result["pooled_self_edits"][pooled], result["records"]):
        assert fmt == "rewrite" and all(faithful(s, passage.context) for s in sentences(text))
        arms = record["conditions"]
        assert arms[pooled]["self_edit"] == text
        first = [s for p in parse_paragraphs(arms[single]["self_edit"]) for s in sentences(faithful_part(p, passage.context))]
        assert set(first) <= set(sentences(text))
    code, _, err = run_cli(["bench", "knowledge", "--data", str(data), "--pool", "0", "--out", str(out)], capsys)
    assert code != 0 and "--pool" in err


def test_bench_knowledge_select_scores_the_candidate_that_answers_its_probes_best(home, data, tmp_path, capsys):
    """--select 3 adds, per format, the one of 3 self-edits (the first of them the ordinary arm's) whose
    adapter answers the passage's own probes best: the probes are those ingest would make, the gold
    questions play no part in the choice, and the arm reports that candidate's answers."""
    from agent.generate import document_seed
    from agent.probes import make_probes
    from agent.workspace import load_model
    from benchmarks import squad
    from seal import config

    out = tmp_path / "results"
    code, _, err = run_cli(["bench", "knowledge", "--data", str(data), "--n", "2", "--formats", "rewrite",
                            "--select", "3", "--out", str(out)], capsys)
    assert code == 0, err
    result = json.loads((out / "knowledge-eval-n2-select3.json").read_text())
    single = "LoRA: passage + rewrite, faithful sentences only"
    chosen = f"{single}, best of 3 by probes"
    assert [s["condition"] for s in result["summary"]][4:] == ["LoRA: passage only", single, "distill: passage + rewrite", chosen]
    assert [s["condition"] for s in result["selections"]] == [chosen]
    assert f"#### {chosen}: which of the 3 candidates" in (out / "knowledge-eval-n2-select3.md").read_text()
    cfg = config.load()
    lm = load_model(cfg.model, home / "models")
    passages = squad.split(squad.load(data), "eval", 2)
    for passage, edits, record in zip(passages, result["selected_self_edits"][chosen], result["records"]):
        arms = record["conditions"]
        assert len(edits) == 3 and edits[0] == ["rewrite", arms[single]["self_edit"]]
        probes = make_probes(lm, passage.context, cfg.verify.generated_probes,
                             document_seed(hashlib.sha256(passage.context.encode()).hexdigest(), cfg.self_edit.seed))
        assert record["probes"] == [{"question": q, "answer": a} for q, a, _ in probes]
        candidates, best = arms[chosen]["candidates"], arms[chosen]["chosen"]
        assert len(candidates) == 3 and candidates[0]["train_tokens"] == arms[single]["train_tokens"]
        assert candidates[0]["correct"] == arms[single]["correct"] and candidates[best]["correct"] == arms[chosen]["correct"]
        assert all((c["probe_accuracy"], c["probe_f1"]) <= (candidates[best]["probe_accuracy"], candidates[best]["probe_f1"])
                   for c in candidates)
        assert arms[chosen]["self_edit"] == edits[best][1] and arms[chosen]["accuracy"] == candidates[best]["accuracy"]
        assert arms[chosen]["accuracy"] == sum(arms[chosen]["correct"]) / len(record["questions"])
    code, _, err = run_cli(["bench", "knowledge", "--data", str(data), "--select", "0", "--out", str(out)], capsys)
    assert code != 0 and "--select" in err


def test_bench_knowledge_self_edit_arm_follows_the_configured_filter(home, data, tmp_path, capsys):
    """The self-edit arm trains on (and is labelled as) the self-edit as the runtime would: filtered by
    default (`self_edit.faithful_only`), as written when the filter is off; --faithful scores both."""
    def arms(settings: list[str], *options: str) -> tuple[list[str], list[dict]]:
        out = tmp_path / f"run{len(list(tmp_path.glob('run*')))}"
        code, _, err = run_cli([*settings, "bench", "knowledge", "--data", str(data), "--n", "2", "--formats",
                                "rewrite", *options, "--out", str(out)], capsys)
        assert code == 0, err
        result = json.loads(next(out.glob("knowledge-*.json")).read_text())
        return [s["condition"] for s in result["summary"]][4:], result["records"]

    whole, filtered = "LoRA: passage + rewrite", "LoRA: passage + rewrite, faithful sentences only"
    off = ["--set", "self_edit.faithful_only=false"]
    distilled = "distill: passage + rewrite"
    default, by_default = arms([])
    assert default == ["LoRA: passage only", filtered, distilled]
    assert arms(off)[0] == ["LoRA: passage only", whole, distilled]
    both, records = arms(off, "--faithful")
    assert both == ["LoRA: passage only", whole, filtered, distilled]
    assert [r["conditions"][filtered]["sequences"] for r in records] == \
           [r["conditions"][filtered]["sequences"] for r in by_default]


def test_interrupted_knowledge_run_resumes_to_the_same_result(home, data, tmp_path, capsys, monkeypatch):
    """A run stopped after its first passage, resumed with --resume, ends with the records and self-edits
    of an uninterrupted run; a resume with other options, or with nothing to resume, is a one-line error."""
    from benchmarks import knowledge

    args = ["bench", "knowledge", "--data", str(data), "--n", "2", "--formats", "rewrite"]
    assert run_cli([*args, "--out", str(tmp_path / "whole")], capsys)[0] == 0
    whole = json.loads((tmp_path / "whole" / "knowledge-eval-n2.json").read_text())

    out = tmp_path / "parts"
    interrupted([*args, "--out", str(out)], capsys, monkeypatch, knowledge, "score_passage")  # in the second passage
    partial = json.loads((out / "knowledge-eval-n2.json").read_text())
    assert (partial["passages_done"], partial["complete"]) == (1, False)

    code, _, err = run_cli(["--set", "train.epochs=1", *args, "--out", str(out), "--resume"], capsys)
    assert code == 1 and "config.train.epochs" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli([*args, "--out", str(tmp_path / "none"), "--resume"], capsys)
    assert code == 1 and "nothing to resume" in err

    assert run_cli([*args, "--out", str(out), "--resume"], capsys)[0] == 0
    resumed = json.loads((out / "knowledge-eval-n2.json").read_text())
    assert resumed["complete"] and resumed["self_edits"] == whole["self_edits"]
    untimed = lambda records: [{**r, "conditions": {label: {k: v for k, v in c.items() if k != "train_seconds"}
                                                      for label, c in r["conditions"].items()}} for r in records]
    assert untimed(resumed["records"]) == untimed(whole["records"]) and resumed["summary"] == whole["summary"]
    assert resumed["started"] == partial["started"] and [r["from_passage"] for r in resumed["resumed"]] == [1]
    assert (out / "knowledge-eval-n2.png").stat().st_size > 0


def test_bench_continual_on_tiny_model(home, data, tmp_path, capsys):
    """Both arms learn the same documents; each yields a (k+1)×k matrix whose row 0 is the base."""
    out = tmp_path / "results"
    code, _, err = run_cli(["bench", "continual", "--data", str(data), "--sequences", "2", "--length", "2",
                            "--out", str(out)], capsys)
    assert code == 0, err
    result = json.loads((out / "continual-eval-2x2.json").read_text())
    for run in result["runs"]:
        for arm in ("protected", "plain"):
            matrix = run[arm]["matrix"]
            assert len(matrix) == 3 and matrix[0] == run["no_adaptation"] and matrix[1][1] is None
            assert [s["self_edit"] for s in run["protected"]["steps"]] == [s["self_edit"] for s in run["plain"]["steps"]], \
                "both arms must train on the same self-edits"
    assert result["summary"]["commits"]["protected"] == 4  # the tiny config's gate passes everything
    assert result["summary"]["below_baseline"]["plain"] == [continual.measures(r["plain"]["matrix"])["below_baseline"]
                                                             for r in result["runs"]]
    assert continual.below([[], [1, 5], [4]]) == "2: #1, #5; 3: #4" and continual.below([[], []]) == "none"
    assert (out / "continual-eval-2x2.png").stat().st_size > 0


def test_interrupted_continual_run_resumes_to_the_same_result(home, data, tmp_path, capsys, monkeypatch):
    """A run stopped during its second sequence, resumed with --resume, keeps the first sequence and ends with
    the matrices and steps of an uninterrupted run; a resume with other options is a one-line error."""
    args = ["bench", "continual", "--data", str(data), "--sequences", "2", "--length", "2", "--arms", "protected"]
    assert run_cli([*args, "--out", str(tmp_path / "whole")], capsys)[0] == 0
    whole = json.loads((tmp_path / "whole" / "continual-eval-2x2.json").read_text())

    out = tmp_path / "parts"
    interrupted([*args, "--out", str(out)], capsys, monkeypatch, continual, "protected")  # in the second sequence
    partial = json.loads((out / "continual-eval-2x2.json").read_text())
    assert (len(partial["runs"]), partial["complete"]) == (1, False)

    code, _, err = run_cli([*args[:-1], "protected,plain", "--out", str(out), "--resume"], capsys)
    assert code == 1 and "arguments.arms" in err and len(err.strip().splitlines()) == 1
    assert run_cli([*args, "--out", str(out), "--resume"], capsys)[0] == 0
    resumed = json.loads((out / "continual-eval-2x2.json").read_text())
    untimed = lambda runs: [{**r, "protected": {**r["protected"], "steps": [{k: v for k, v in st.items() if k != "seconds"}
                                                                          for st in r["protected"]["steps"]]}} for r in runs]
    assert resumed["complete"] and untimed(resumed["runs"]) == untimed(whole["runs"])
    assert resumed["summary"] == whole["summary"] and [r["from_sequence"] for r in resumed["resumed"]] == [1]
    assert (out / "continual-eval-2x2.png").stat().st_size > 0


def test_rehearsal_check_needs_a_known_answer(home, data, tmp_path, capsys):
    """`python -m studies.rehearsal` on a first passage the model knows nothing of is a one-line error
    that writes nothing."""
    from studies import rehearsal

    code = rehearsal.main(["--data", str(data), "--offset", "0", "--documents", "2", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and "knows none of" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_bench_speed_on_tiny_model(home, tmp_path, capsys):
    out = tmp_path / "results"
    doc = tmp_path / "doc.md"
    doc.write_text(PASSAGES[0]["context"])
    doc.with_suffix(".qa.json").write_text(json.dumps(PASSAGES[0]["questions"]))
    code, _, err = run_cli(["bench", "speed", "--runs", "2", "--doc", str(doc), "--paper-pad", "32",
                            "--paper-epochs", "1", "--out", str(out)], capsys)
    assert code == 0, err
    result = json.loads((out / "speed-doc.json").read_text())
    s = result["summary"]
    assert set(s["cycle"]["median_stages"]) == {"generate", "adapt", "verify", "commit"}
    assert s["machine"]["fp32_gflop_s"] > 0 and s["adapt"]["tokens_per_second"] > 0
    assert s["machine"]["fp32_gflop_s"] == max(s["machine"]["peaks_start_end"]["fp32_gflop_s"])
    assert s["paper"]["tokens"] == 32 * s["paper"]["steps"] and s["paper"]["speedup"] > 0
    # The step profile retrains the first cycle's own sequences, and finds time and FLOPs in its matmuls.
    profile, first = s["step_profile"], result["cycles"][0]
    assert profile["tokens"] == first["train_tokens"], (profile, first)
    assert 0 < profile["matmul_seconds"] < profile["seconds"] and profile["matmul_gflop_s"] > 0, profile
    # Its matmuls are compared with the peak of the dtype they ran in (bf16 only under native autocast).
    dtype = "bf16" if result["config"]["train"]["bf16"] and native_bf16() else "fp32"
    assert profile["matmul_peak"] == dtype, profile
    assert profile["matmul_fraction_of_peak"] == profile["matmul_gflop_s"] / s["machine"][f"{dtype}_gflop_s"]
    assert profile["optimizer_seconds"] > 0 and profile["other_seconds"] > 0, profile
    assert profile["unprofiled_seconds"] == statistics.median(c["train_seconds"] for c in result["cycles"])
    assert "matrix multiplies, at" in (out / "speed-doc.md").read_text()
    # Verify's batch both ways: the chat template's opening is shared, and both layouts answer alike.
    prefix = s["shared_prefix"]
    assert prefix["prompts"] == len(PASSAGES[0]["questions"]) + len(GENERAL_PROBES), prefix
    assert prefix["shared_tokens"] >= MIN_SHARED_PREFIX and prefix["same_answers"] == prefix["prompts"], prefix
    assert prefix["speedup"] == prefix["left_padded_seconds"] / prefix["shared_seconds"] > 0
    # Answering from each memory once the document is learned, timed per question.
    assert set(s["answer_seconds"]) == {"none", "retrieve", "both"} and all(t > 0 for t in s["answer_seconds"].values())
    assert "seconds per answer" in (out / "speed-doc.md").read_text()


def test_serving_benchmark_smoke(tmp_path, tiny_model_dir, monkeypatch):
    """`python -m benchmarks.serving` at smoke size: two clients through steady load and two live swaps; no
    request fails, every activation succeeds, and replies follow each swap."""
    from benchmarks import serving
    from tests.conftest import TINY_CONFIG

    monkeypatch.setenv("SEAL_HOME", str(tmp_path / "seal"))
    config = tmp_path / "config.toml"
    config.write_text(TINY_CONFIG.format(model=tiny_model_dir))
    code = serving.main(["--clients", "2", "--seconds", "4", "--swaps", "2", "--max-tokens", "4",
                         "--config", str(config), "--out", str(tmp_path / "out")])
    result = json.loads((tmp_path / "out" / "serve-throughput.json").read_text())
    assert code == 0 and result["steady"]["requests"] > 0 and result["swapping"]["failed"] == 0, result["swaps"]
    assert [s["to"] for s in result["swaps"]["events"]] == [1, 2] and result["swaps"]["median_switch_seconds"] is not None


def test_bench_tasks_on_tiny_model(home, tmp_path, capsys):
    """`seal bench tasks` at smoke size: one ARC task under all five conditions (the tiny model writes no valid
    plan, so both policy conditions fail and say why), one RL task, the selection rule recorded."""
    code, stdout, err = run_cli(["bench", "tasks", "--n", "1", "--rl-tasks", "1", "--k", "1", "--max-side", "3",
                                 "--out", str(tmp_path)], capsys)
    assert code == 0, err
    result = json.loads((tmp_path / "tasks-arc-n1.json").read_text())
    (row,) = result["tasks"]
    assert set(result["summary"]) == set(tasks_bench.CONDITIONS) and all(c in row for c in tasks_bench.CONDITIONS)
    assert row["policy v0 plan"]["invalid"] and not row["policy v0 plan"]["solved"]
    assert result["rl_round"]["tasks"] == 1 and result["selection"]["max_side"] == 3
    assert "solved" in stdout


def test_faithfulness_check_on_tiny_model(home, data, tmp_path, capsys):
    from studies import faithfulness

    out = tmp_path / "out"
    code = faithfulness.main(["--data", str(data), "--n", "2", "--formats", "rewrite,self_qa", "--penalties", "1.15,1.0",
                              "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    result = json.loads((out / "faithfulness-eval-n2.json").read_text())
    assert [(r["format"], r["repetition_penalty"]) for r in result["rows"]] == [
        ("rewrite", 1.15), ("self_qa", 1.15), ("rewrite", 1.0), ("self_qa", 1.0)]
    assert all(len(r["self_edits"]) == 2 and 0 <= r["faithful"] <= r["sentences"] for r in result["rows"])
    assert "faithful sentences" in (out / "faithfulness-eval-n2.md").read_text()
    with pytest.raises(SystemExit) as exit:
        faithfulness.main(["--data", str(data), "--penalties", "0.9", "--out", str(tmp_path / "bad")])
    assert exit.value.code == 2 and "at least 1.0" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_matmul_shapes_table_has_a_rate_per_shape_and_dtype():
    """Every shape gets a positive rate in both dtypes, emulated bf16 (about 1 GFLOP/s on AVX2) included;
    the training-step shapes only, since the 2048³ peak takes minutes in emulated bf16."""
    from studies import matmul_shapes

    step = {name: shape for name, shape in matmul_shapes.SHAPES.items() if shape[0] == 150}
    rows = matmul_shapes.main(repeats=2, shapes=step).splitlines()[2:]
    assert len(step) == len(rows) == 3
    assert all(float(cell) > 0 for row in rows for cell in row.strip("|").split("|")[1:])
