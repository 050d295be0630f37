"""Few-shot tasks (agent/tasks.py): intake checks, the configuration self-edit parsed strictly (property-based:
valid ones parse to what they say, anything else is a clear error, never a crash), every geometric augmentation
undone by its inverse, voting that maps predictions back, the training set, and the training budget."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent import tasks
from agent.tasks import Example, TrainingPlan
from seal.errors import InputError

GRIDS = st.integers(1, 6).flatmap(lambda h: st.integers(1, 6).flatmap(
    lambda w: st.lists(st.lists(st.integers(0, 9), min_size=w, max_size=w), min_size=h, max_size=h)))
CONFIGS = st.fixed_dictionaries({}, optional={
    "augmentations": st.lists(st.sampled_from(tasks.GRID_TOOLS), max_size=5),
    "permutations": st.integers(0, 3), "context": st.sampled_from(["leave_one_out", "none"]),
    "loss": st.sampled_from(["outputs", "all"]), "learning_rate": st.floats(1e-5, 1e-2), "epochs": st.integers(1, 10)})
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=14), inner, max_size=3))


def grid(rows):
    return tuple(tuple(r) for r in rows)


@settings(max_examples=300, deadline=None)
@given(CONFIGS, st.text(max_size=20))
def test_valid_plans_parse_to_what_they_say(data, chatter):
    config = tasks.parse_plan(f"{chatter.replace('{', '')} {json.dumps(data)} trailing", grids=True)
    for key, value in data.items():
        expected = tuple(dict.fromkeys(value)) if key == "augmentations" else value
        assert getattr(config, key) == expected, key


@settings(max_examples=500, deadline=None)
@given(st.one_of(JSON.map(json.dumps), st.text(max_size=60), CONFIGS.map(json.dumps)), st.booleans())
def test_anything_else_is_a_clear_error_never_a_crash(text, grids):
    try:
        config = tasks.parse_plan(text, grids=grids)
    except InputError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert isinstance(config, TrainingPlan) and (grids or not config.augmentations)


@pytest.mark.parametrize("text, problem", [
    ('{"epochs": 50}', "epochs"), ('{"learning_rate": true}', "learning_rate"), ('{"augmentations": "flips"}', "list"),
    ('{"augmentations": ["shear"]}', "do not apply"), ('{"lr": 0.1}', "unknown keys"), ('{"loss": "inputs"}', "loss"),
    ("no json here", "no JSON"), ('{"epochs": 2', "not valid JSON")])
def test_invalid_plans_say_what_is_wrong(text, problem):
    with pytest.raises(InputError, match=problem):
        tasks.parse_plan(text, grids=True)


def scripted(values):
    """A policy that continues each key with the next of `values` (and more text after it)."""
    replies = iter(values)
    return lambda text: next(replies) + ', "junk": 1}'


def test_a_plan_is_written_one_value_at_a_time():
    text = tasks.write_plan(scripted(['rotations", "colors"]', " 2", 'none"', 'all"', " 0.003", " 5"]), grids=True)
    assert tasks.parse_plan(text, grids=True) == TrainingPlan(("rotations", "colors"), 2, "none", "all", 0.003, 5)
    text = tasks.write_plan(scripted(["1", 'leave_one_out"', 'outputs"', "1e-3", "3"]), grids=False)
    assert text.startswith('{"augmentations": [], "permutations": 1,'), "a text task has no tools to choose"
    assert tasks.parse_plan(text, grids=False) == TrainingPlan(permutations=1, epochs=3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=20), min_size=6, max_size=6), st.booleans())
def test_whatever_the_policy_writes_is_a_plan_or_a_clear_error(values, grids):
    text = tasks.write_plan(scripted(values), grids=grids)
    assert text.startswith('{"augmentations": [')
    try:
        tasks.parse_plan(text, grids=grids)
    except InputError as e:
        assert str(e) and "\n" not in str(e)


def test_text_tasks_take_no_grid_tools():
    with pytest.raises(InputError, match="text task"):
        tasks.parse_plan('{"augmentations": ["flips"]}', grids=False)


@given(GRIDS, st.sampled_from(sorted(tasks.GEOMETRIC)), st.integers(0, 1000))
def test_every_augmentation_is_undone_by_its_inverse(rows, name, seed):
    g = grid(rows)
    assert tasks.GEOMETRIC[tasks.INVERSE[name]](tasks.GEOMETRIC[name](g)) == g
    mapping = tasks.colour_map(seed)
    assert sorted(mapping.values()) == list(range(10)) and mapping[0] == 0, "a permutation that keeps the background"
    assert tasks.read_grid(tasks.render(g)) == g


def test_vote_maps_predictions_back_and_takes_the_majority():
    """Rule: recolour 1 -> 2. A predictor right in every frame but one (rot90, where it answers garbage) still
    wins the vote, with each frame's answer mapped back to the original orientation."""
    shift = {c: (2 if c == 1 else c) for c in range(10)}
    demos = [Example(grid([[1, 0], [0, 0]]), grid([[2, 0], [0, 0]])), Example(grid([[0, 1]]), grid([[0, 2]]))]
    query = grid([[1, 1, 0], [0, 0, 1]])

    def predict(shots, q):
        return "9" if q == tasks.GEOMETRIC["rot90"](query) else tasks.render(tasks.recolour(q, shift))

    answer = tasks.vote(predict, demos, query, ("rot90", "rot180", "flip_h"))
    assert tasks.correct(answer, tasks.recolour(query, shift))


def test_training_set_and_budget():
    demos = tuple(Example(grid([[i]]), grid([[i + 1]])) for i in range(3))
    pairs = tasks.training_set(demos, TrainingPlan(augmentations=("flips",), permutations=1), seed=0)
    assert len(pairs) == 3 * 3 * 2  # 3 views (original + 2 flips) x 3 queries x (original order + 1 permutation)
    messages, completion = pairs[0]
    assert "Input:\n1\nOutput:\n2" in messages[0]["content"] and messages[0]["content"].endswith("Input:\n0\nOutput:")
    assert completion == "1"
    assert len(tasks.training_set(demos, TrainingPlan(context="none"), seed=0)) == 3
    with pytest.raises(InputError, match="over budget"):
        tasks.check_budget(TrainingPlan(epochs=3), [100] * 10, max_tokens=2_000)


def test_task_files_are_checked(tmp_path):
    good = {"train": [{"input": "abc", "output": "ABC"}, {"input": "xy", "output": "XY"}], "test": [{"input": "q"}]}
    (tmp_path / "t.json").write_text(json.dumps(good))
    task = tasks.load_task(tmp_path / "t.json")
    assert task.id == "t" and not task.grids and task.test[0].output is None
    for bad, problem in [({"train": []}, "lists"), ({**good, "train": good["train"][:1]}, "at least 2"),
                         ({**good, "train": [{"input": [[1, 2], [3]], "output": "x"}] * 2}, "rectangular"),
                         ({**good, "train": [{"input": [[1]], "output": "x"}] * 2}, "mixes"),
                         ({**good, "test": []}, "test input")]:
        with pytest.raises(InputError, match=problem):
            tasks.parse_task(bad, "bad")
    with pytest.raises(InputError, match="task id"):
        tasks.parse_task(good, "my task")
    assert tasks.read_grid("12\n3²") is None, "only the digits 0-9 make a grid"
    with pytest.raises(InputError, match="not a readable JSON"):
        (tmp_path / "x.json").write_text("{")
        tasks.load_task(tmp_path / "x.json")


def test_arc_tasks_load_from_the_bundled_data():
    arc = tasks.arc_tasks("train")
    assert len(arc) == 400 and all(t.grids for t in arc)
    chosen = [t for t in arc if tasks.small(t)]
    assert 0 < len(chosen) < 400 and all(len(t.train) <= 4 for t in chosen)
