"""Configuration: frozen dataclasses with defaults that run on a 2-core CPU, one TOML file under the
home directory, overrides from the CLI, and validation that reports every problem at once."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seal.errors import ConfigError

SELF_EDIT_FORMATS = ("implications", "long_implications", "rewrite", "self_qa")


def home() -> Path:
    """The one directory everything the runtime writes lives under: `$SEAL_HOME`, else ~/.local/share/seal."""
    env = os.environ.get("SEAL_HOME")
    if env:
        return Path(env).expanduser().resolve()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return (Path(base) / "seal").resolve()


def _help(text: str, default: Any) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    path: str = _help("Hugging Face model directory; empty means the bundled SmolLM2-135M-Instruct.", "")
    device: str = _help("Where the model runs: auto (CUDA if present, else Apple mps, else the CPU), cpu, cuda, "
                        "cuda:N or mps. Nothing falls back to the CPU silently.", "auto")
    dtype: str = _help("Weights dtype: auto (bfloat16 on a CUDA GPU that has it, float16 on one that does not, else "
                       "float32), float32, bfloat16 or float16.", "auto")
    quantize: str = _help("Base weights: none, or 4bit (QLoRA: NF4 via bitsandbytes on a CUDA GPU, the LoRA in full "
                          "precision; pip install 'seal-runtime[qlora]').", "none")
    threads: int = _help("CPU threads for torch; 0 means all cores.", 0)
    trust_remote_code: bool = _help("Let transformers run code shipped with the model directory.", False)
    chat_template: str = _help("Jinja chat template (or a file holding one) for a model directory that ships none.", "")


@dataclass(frozen=True, kw_only=True)
class SelfEditConfig:
    format: str = _help(f"Prompt format: one of {', '.join(SELF_EDIT_FORMATS)}.", "rewrite")
    k: int = _help("Self-edits sampled per document (candidates).", 1)
    temperature: float = _help("Sampling temperature for self-edits.", 0.7)
    top_p: float = _help("Nucleus sampling for self-edits.", 0.95)
    repetition_penalty: float = _help("Repetition penalty while sampling (1.0 = off). Off by default: it also counts every "
                                      "token of the document in the prompt, so it pushes a self-edit away from the "
                                      "document's own names and numbers.", 1.0)
    max_new_tokens: int = _help("Longest self-edit, in tokens.", 192)
    max_sequences: int = _help("Most training sequences kept from one self-edit.", 16)
    max_sequence_tokens: int = _help("Longest training sequence, in tokens (longer ones are split).", 192)
    faithful_only: bool = _help("Train only on the self-edit's faithful sentences and QA pairs: those whose numbers "
                                "and capitalised names all occur in the document and whose other words mostly do "
                                "(a small model's self-edits invent names and numbers).", True)
    seed: int = _help("Seed for sampling; each candidate adds its index.", 0)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    objective: str = _help("What a candidate learns from: distill (the student, reading no document, matches the "
                           "next-token distributions of its parent reading the document, on the transfer text below) "
                           "or ce (cross-entropy on the self-edit and the document).", "distill")
    passage: float = _help("distill: cross-entropy weight on the document's own text.", 1.0)
    self_edit: float = _help("distill: weight of the self-edit as transfer text (the teacher reads the document first).", 1.0)
    questions: float = _help("distill: weight of questions built from the document's names, numbers and dates, asked "
                             "in the chat format (the teacher reads the document first); never a probe's span.", 1.0)
    answer_ce: float = _help("distill: cross-entropy weight on those questions' answers (the span itself).", 0.5)
    sentences: float = _help("distill: weight of the document's sentences, each alone after its title (the teacher "
                             "reads the document first).", 1.0)
    recital: float = _help("distill: weight of the whole document as the chat answer to \"What do you know about "
                           "<title>?\" (the teacher reads the document first); cross-entropy on it at answer_ce.", 1.0)
    retention: float = _help("distill: weight of staying with the base model along its own answers to 48 general "
                             "questions, and with the parent version on replayed earlier material (each teacher "
                             "reads the same text).", 2.0)
    max_questions: int = _help("distill: most questions built per document.", 8)
    top_k: int = _help("distill: teacher tokens kept per position (the rest of its distribution counts as one bucket).", 32)
    modules: str = _help("Projections a knowledge adapter trains: all (every linear projection of the blocks) or mlp "
                         "(the feed-forward ones only: it drifts less from the base model and learns less). Policy and "
                         "task adapters train all.", "all")
    rank: int = _help("LoRA rank.", 16)
    alpha: int = _help("LoRA alpha.", 32)
    dropout: float = _help("LoRA dropout.", 0.0)
    learning_rate: float = _help("AdamW peak learning rate (linear decay to 0).", 3e-3)
    epochs: int = _help("Passes over the candidate's transfer text.", 6)
    batch_size: int = _help("Sequences per optimiser step.", 8)
    loss_on: str = _help("Tokens that carry the loss: completion (prompt masked) or all.", "completion")
    loss_weighting: str = _help("How a step's loss averages over its batch: token (every target token weighs the "
                                "same) or sequence (every sequence's own mean weighs the same, so a short self-edit "
                                "sentence counts as much as a long passage chunk).", "token")
    replay: int = _help("Sequences replayed from earlier committed self-edits.", 8)
    bf16: bool = _help("Mixed precision in training: bfloat16 autocast where the device has it natively (a CUDA GPU; "
                       "a CPU with AVX512-BF16 or AMX: ~30% faster), float16 with loss scaling on a CUDA GPU without "
                       "it; on other CPUs bf16 is emulated and far slower, so training stays fp32.", True)
    gradient_checkpointing: bool = _help("Recompute activations in the backward pass instead of keeping them: far "
                                         "less memory for a large model or long passages, ~30% more time.", False)
    seed: int = _help("Seed for initialisation and shuffling.", 0)


@dataclass(frozen=True, kw_only=True)
class VerifyConfig:
    min_gain: float = _help("Least new-knowledge gain (accuracy points, 0-1) that passes the gate.", 0.01)
    max_retention_drop: float = _help("Largest allowed drop on earlier documents' probes (0-1).", 0.15)
    max_general_drop: float = _help("Largest allowed drop below the base model on the general-ability set (0-1).", 0.15)
    max_drift: float = _help("Largest allowed drift from the base model on the general-ability set: the mean "
                             "KL(base ‖ candidate) per token along its questions and answers, in nats.", 0.5)
    retention_probes: int = _help("Probes of earlier documents (learned or rejected) sampled for retention.", 8)
    generated_probes: int = _help("QA probes the model writes when none are supplied.", 5)
    answer_tokens: int = _help("Longest closed-book answer, in tokens.", 24)


@dataclass(frozen=True, kw_only=True)
class PolicyConfig:
    learning_rate: float = _help("AdamW peak learning rate of a policy update (ReST-EM M-step).", 1e-3)
    epochs: int = _help("Passes over the selected (prompt -> self-edit) pairs in a policy update.", 2)
    batch_size: int = _help("Pairs per optimiser step in a policy update.", 4)
    min_reward: float = _help("A document's best self-edit is learned from only if its reward exceeds this "
                              "(0: any gain; 0.25: at least two more of four probes right).", 0.0)
    max_tokens: int = _help("Longest (prompt + self-edit) pair trained on, in tokens.", 1024)
    update_every_documents: int = _help("Run a policy update after this many committed documents (0: never automatically).", 0)
    update_every_positive: int = _help("Run a policy update once this many new positive-reward trials exist (0: never automatically).", 0)


@dataclass(frozen=True, kw_only=True)
class IngestConfig:
    max_document_mb: float = _help("Largest document accepted, in megabytes (a file's size; a text's UTF-8 size).", 20.0)
    passage_words: int = _help("Most words in one passage: documents are cut along their headings and paragraphs "
                               "into passages of this size, which retrieval finds.", 160)

    @property
    def max_bytes(self) -> int:
        return int(self.max_document_mb * 1_000_000)


@dataclass(frozen=True, kw_only=True)
class AnswerConfig:
    context: str = _help("What `seal ask`, `seal chat` and the API answer from: none (the learned weights alone, "
                         "closed-book), retrieve (the best-matching passages of ingested documents in context, base "
                         "model), both (those passages in context with the knowledge version).", "none")
    passages: int = _help("Passages retrieval puts in context.", 3)


@dataclass(frozen=True, kw_only=True)
class TasksConfig:
    k: int = _help("Training plans (the self-edits of a few-shot task) sampled per task.", 2)
    retries: int = _help("Extra samples for a plan that does not parse, per plan.", 2)
    value_tokens: int = _help("Longest value the policy writes for one key of a plan, in tokens.", 32)
    max_train_tokens: int = _help("Budget: most tokens one plan may train on, all epochs (over it scores zero).", 16000)
    held_out: int = _help("Demonstrations held out to score a plan: the last ones, not trained on (at least one "
                          "is always kept to train on).", 1)
    min_accuracy: float = _help("Held-out accuracy a plan must reach (and no worse than without adaptation) to be "
                                "committed.", 0.5)
    answer_tokens: int = _help("Longest predicted output, in tokens.", 160)


@dataclass(frozen=True, kw_only=True)
class RemoteConfig:
    url: str = _help("OpenAI-compatible server that samples self-edits and answers probes (vLLM with runtime LoRA "
                     "loading, or `seal serve`), e.g. http://127.0.0.1:8001; empty means generate in this process.", "")
    model: str = _help("The base model's name on that server (vLLM: its --served-model-name).", "seal@v0")
    api_key: str = _help("Bearer key for that server, if it needs one.", "")


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    inbox: str = _help("Folder `seal run` watches for documents; empty means $SEAL_HOME/inbox.", "")
    poll_seconds: float = _help("How often `seal run` looks for new work when idle.", 2.0)


# Named sets of defaults, under the config file and `--set`: `cpu` is the dataclasses' own (a 2-core CPU and the
# bundled 135M model); `gpu` the SEAL paper's settings where they fit one card and a 0.5B-8B model: LoRA rank 32,
# alpha 64, learning rate 1e-3, 10 epochs, several self-edits a document, longer self-edits and answers.
PROFILES: dict[str, dict[str, Any]] = {
    "cpu": {},
    "gpu": {
        "self_edit": {"k": 3, "max_new_tokens": 1024, "max_sequences": 64, "max_sequence_tokens": 1024},
        "train": {"rank": 32, "alpha": 64, "learning_rate": 1e-3, "epochs": 10, "batch_size": 16,
                  "max_questions": 32, "top_k": 64},
        "verify": {"answer_tokens": 64, "retention_probes": 32},
        "policy": {"batch_size": 16, "max_tokens": 4096},
        "ingest": {"passage_words": 400},
        "answer": {"passages": 5},
    },
}


@dataclass(frozen=True, kw_only=True)
class Config:
    profile: str = _help(f"Defaults for the hardware: {' or '.join(PROFILES)} (the SEAL paper's sizes where they fit "
                         "one GPU card); settings in this file and `--set` override them.", "cpu")
    database_url: str = _help("SQLAlchemy URL; empty means SQLite at $SEAL_HOME/seal.db.", "")
    model: ModelConfig = field(default_factory=ModelConfig)
    self_edit: SelfEditConfig = field(default_factory=SelfEditConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    answer: AnswerConfig = field(default_factory=AnswerConfig)
    run: RunConfig = field(default_factory=RunConfig)
    remote: RemoteConfig = field(default_factory=RemoteConfig)
    tasks: TasksConfig = field(default_factory=TasksConfig)


def _problems(cfg: Config) -> list[str]:
    p: list[str] = []
    for section in dataclasses.fields(cfg):
        settings = getattr(cfg, section.name)
        for f in dataclasses.fields(settings) if dataclasses.is_dataclass(settings) else ():
            value = getattr(settings, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                p.append(f"{section.name}.{f.name} = {value}: must be a finite number")
    m, s, t, v, i, pol = cfg.model, cfg.self_edit, cfg.train, cfg.verify, cfg.ingest, cfg.policy
    if m.dtype not in ("auto", "float32", "bfloat16", "float16"):
        p.append(f"model.dtype = {m.dtype!r}: use 'auto', 'float32', 'bfloat16' or 'float16'")
    if m.quantize not in ("none", "4bit"):
        p.append(f"model.quantize = {m.quantize!r}: use 'none' or '4bit'")
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", m.device):
        p.append(f"model.device = {m.device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    if m.threads < 0:
        p.append(f"model.threads = {m.threads}: use 0 (all cores) or a positive count")
    if s.format not in SELF_EDIT_FORMATS:
        p.append(f"self_edit.format = {s.format!r}: use one of {', '.join(SELF_EDIT_FORMATS)}")
    for name, value in (("self_edit.k", s.k), ("self_edit.max_new_tokens", s.max_new_tokens),
                        ("self_edit.max_sequences", s.max_sequences), ("train.rank", t.rank),
                        ("train.alpha", t.alpha), ("train.epochs", t.epochs), ("train.batch_size", t.batch_size),
                        ("verify.answer_tokens", v.answer_tokens),
                        ("ingest.passage_words", i.passage_words), ("answer.passages", cfg.answer.passages),
                        ("policy.epochs", pol.epochs), ("policy.batch_size", pol.batch_size),
                        ("tasks.k", cfg.tasks.k), ("tasks.value_tokens", cfg.tasks.value_tokens),
                        ("tasks.max_train_tokens", cfg.tasks.max_train_tokens), ("tasks.held_out", cfg.tasks.held_out),
                        ("tasks.answer_tokens", cfg.tasks.answer_tokens)):
        if value < 1:
            p.append(f"{name} = {value}: must be at least 1")
    if s.max_sequence_tokens < 16:
        p.append(f"self_edit.max_sequence_tokens = {s.max_sequence_tokens}: must be at least 16")
    if s.temperature <= 0:
        p.append(f"self_edit.temperature = {s.temperature}: must be above 0 (self-edits are sampled)")
    if not 0 < s.top_p <= 1:
        p.append(f"self_edit.top_p = {s.top_p}: must be in (0, 1]")
    if s.repetition_penalty < 1:
        p.append(f"self_edit.repetition_penalty = {s.repetition_penalty}: must be at least 1.0")
    if not 0 <= t.dropout < 1:
        p.append(f"train.dropout = {t.dropout}: must be in [0, 1)")
    if not 0 < t.learning_rate < 1:
        p.append(f"train.learning_rate = {t.learning_rate}: must be in (0, 1)")
    if t.loss_on not in ("completion", "all"):
        p.append(f"train.loss_on = {t.loss_on!r}: use 'completion' or 'all'")
    if i.max_document_mb <= 0:
        p.append(f"ingest.max_document_mb = {i.max_document_mb}: must be above 0")
    if cfg.answer.context not in ("none", "retrieve", "both"):
        p.append(f"answer.context = {cfg.answer.context!r}: use 'none', 'retrieve' or 'both'")
    if t.modules not in ("mlp", "all"):
        p.append(f"train.modules = {t.modules!r}: use 'mlp' or 'all'")
    if t.objective not in ("distill", "ce"):
        p.append(f"train.objective = {t.objective!r}: use 'distill' or 'ce'")
    for name, value in (("train.passage", t.passage), ("train.self_edit", t.self_edit), ("train.questions", t.questions),
                        ("train.answer_ce", t.answer_ce), ("train.sentences", t.sentences),
                        ("train.recital", t.recital),
                        ("train.retention", t.retention), ("train.max_questions", t.max_questions)):
        if value < 0:
            p.append(f"{name} = {value}: must be 0 or more")
    if t.top_k < 1:
        p.append(f"train.top_k = {t.top_k}: must be at least 1")
    if t.loss_weighting not in ("token", "sequence"):
        p.append(f"train.loss_weighting = {t.loss_weighting!r}: use 'token' or 'sequence'")
    if not 0 < pol.learning_rate < 1:
        p.append(f"policy.learning_rate = {pol.learning_rate}: must be in (0, 1)")
    if cfg.remote.url and not cfg.remote.url.startswith(("http://", "https://")):
        p.append(f"remote.url = {cfg.remote.url!r}: use an http:// or https:// URL, or empty for in-process generation")
    if not 0 <= cfg.tasks.min_accuracy <= 1:
        p.append(f"tasks.min_accuracy = {cfg.tasks.min_accuracy}: a fraction in [0, 1]")
    if not 0 < cfg.run.poll_seconds <= 3600:
        p.append(f"run.poll_seconds = {cfg.run.poll_seconds}: must be in (0, 3600]")
    if pol.max_tokens < 64:
        p.append(f"policy.max_tokens = {pol.max_tokens}: must be at least 64")
    for name, value in (("train.replay", t.replay), ("verify.retention_probes", v.retention_probes),
                        ("verify.generated_probes", v.generated_probes), ("tasks.retries", cfg.tasks.retries),
                        ("policy.update_every_documents", pol.update_every_documents),
                        ("policy.update_every_positive", pol.update_every_positive)):
        if value < 0:
            p.append(f"{name} = {value}: must be 0 or more")
    if v.max_drift < 0:
        p.append(f"verify.max_drift = {v.max_drift}: must be 0 or more")
    for name, value in (("verify.min_gain", v.min_gain), ("verify.max_retention_drop", v.max_retention_drop),
                        ("verify.max_general_drop", v.max_general_drop), ("policy.min_reward", pol.min_reward)):
        if not -1 <= value <= 1:
            p.append(f"{name} = {value}: accuracy points are fractions in [-1, 1]")
    return p


def validate(cfg: Config) -> Config:
    """Return `cfg` unchanged, or raise ConfigError listing every problem at once."""
    problems = _problems(cfg)
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))
    return cfg


def _build(cls: type, data: dict[str, Any], prefix: str, problems: list[str]) -> Any:
    kwargs: dict[str, Any] = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in data.items():
        f = fields.get(key)
        if f is None:
            problems.append(f"{prefix}{key}: unknown setting (see `seal config show`)")
        elif dataclasses.is_dataclass(f.default_factory if f.default_factory is not dataclasses.MISSING else None):
            if isinstance(value, dict):
                kwargs[key] = _build(f.default_factory, value, f"{prefix}{key}.", problems)
            else:
                problems.append(f"{prefix}{key}: must be a table of settings")
        else:
            expected = type(f.default)
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if type(value) is not expected:
                problems.append(f"{prefix}{key} = {value!r}: must be {expected.__name__}")
            else:
                kwargs[key] = value
    return cls(**kwargs)


def from_dict(data: dict[str, Any]) -> Config:
    """Build and validate a Config from nested dicts (TOML tables); every problem is reported at once."""
    problems: list[str] = []
    cfg = _build(Config, data, "", problems)
    problems += _problems(cfg)
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))
    return cfg


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`section.key=value` strings (values in TOML syntax, bare words as strings) to nested dicts."""
    data: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: write it as section.key=value, e.g. train.epochs=3")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        node = data
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part} is set to a value elsewhere, not a table of settings")
        node[leaf] = value
    return data


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def config_path() -> Path:
    return home() / "config.toml"


def load(overrides: dict[str, Any] | None = None) -> Config:
    """The effective configuration: defaults < the chosen profile's < $SEAL_HOME/config.toml < `overrides`."""
    data: dict[str, Any] = {}
    path = config_path()
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as e:
            raise ConfigError(f"{path}: not valid TOML ({e}); fix or delete the file") from e
    url = os.environ.get("SEAL_DATABASE_URL")
    if url:
        data["database_url"] = url
    data = _merge(data, overrides or {})
    profile = data.get("profile", Config.profile)
    if profile not in PROFILES:
        raise ConfigError(f"profile = {profile!r}: use {' or '.join(repr(p) for p in PROFILES)}")
    return from_dict(_merge(PROFILES[profile], data))


def to_toml(cfg: Config) -> str:
    """Render a Config as TOML, each setting preceded by its help text."""
    lines: list[str] = []

    def render(obj: Any, section: str) -> None:
        nested = []
        if section:
            lines.append(f"\n[{section}]")
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                nested.append((f.name, value))
                continue
            lines.append(f"# {f.metadata.get('help', '')}")
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, str):
                text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            else:
                text = repr(value)
            lines.append(f"{f.name} = {text}")
        for name, value in nested:
            render(value, f"{section}.{name}" if section else name)

    render(cfg, "")
    return "\n".join(lines).lstrip() + "\n"
