"""The TRL + PEFT backend end to end on the smoke Gemma 3n: masking, training, resume, merge, reload, generate."""

from functools import partial
from importlib.metadata import version
from types import SimpleNamespace

import pytest

from titlegen_assets.prompts import INSTRUCTION, chat_template, prompt_messages, stop_token_ids, training_example
from titlegen_assets.training.settings import LoraSettings
from titlegen_assets_tests.support import trl_cpu_training_blocker

#: Every test here also runs with the GPU pins (.venv-gpu); those that train need TRL >= 1.16 on a CPU.
pytestmark = pytest.mark.gpu_pins
needs_cpu_training = pytest.mark.skipif(trl_cpu_training_blocker() is not None, reason=str(trl_cpu_training_blocker()))

TINY = dict(base_model="titlegen/smoke-gemma3n-tiny", backend="trl", max_steps=4, checkpoint_steps=2, logging_steps=1,
            per_device_train_batch_size=4, gradient_accumulation_steps=1, max_seq_length=512,
            gradient_checkpointing=False, learning_rate=2e-3)


def test_loss_is_on_the_title_and_end_of_turn_only(smoke_base_model, sample_splits, tmp_path):
    import datasets

    from titlegen_assets.training import sft, trl_backend

    config = LoraSettings(**TINY)
    splits = datasets.load_from_disk(sample_splits)
    args_for = partial(sft.sft_args, config, tmp_path, "fp32", False)
    trainer, tokenizer = trl_backend.build_trainer(config, smoke_base_model, splits["train"], None, args_for, [])
    row = trainer.train_dataset[0]
    ids, labels = row["input_ids"], row["labels"]
    text = tokenizer.decode(ids)
    title = splits["train"][0]["title"]
    assert text.startswith(f"<bos><start_of_turn>user\n{INSTRUCTION}\n\n")
    model_turn = tokenizer.encode("<start_of_turn>model\n", add_special_tokens=False)
    start = next(i for i in range(len(ids)) if ids[i : i + len(model_turn)] == model_turn) + len(model_turn)
    assert all(label == -100 for label in labels[:start]), "a prompt token carries loss"
    trained = [token for token, label in zip(ids, labels) if label != -100]
    assert tokenizer.decode(trained).startswith(title + "<end_of_turn>")
    assert trained == ids[start:]


@needs_cpu_training
def test_training_resumes_from_the_last_checkpoint_and_merges_into_a_loadable_16bit_folder(
    smoke_base_model, sample_splits, tmp_path
):
    from transformers import TrainerCallback

    from titlegen_assets.evaluation.generation import generate_titles
    from titlegen_assets.training.lora import train_lora
    from titlegen_assets.training.merge import load_for_generation, merge_adapter

    class Interrupt(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            raise KeyboardInterrupt(f"simulated interruption after step {state.global_step}")

    config = LoraSettings(**{**TINY, "max_steps": 6})
    work = tmp_path / "work"
    logs = []
    with pytest.raises(KeyboardInterrupt):
        train_lora(config, sample_splits, smoke_base_model, tmp_path / "first", work, logs.append, [Interrupt()])
    result = train_lora(config, sample_splits, smoke_base_model, tmp_path / "adapter", work, logs.append)
    assert result.resumed_from == "checkpoint-2" and result.global_step == 6
    kept = sorted(p.name for p in (work / "checkpoints").glob("checkpoint-*"))
    assert len(kept) == 2 and "checkpoint-6" in kept, kept  # the best and the last only
    assert any("resuming from" in line for line in logs)
    assert result.tokens_per_second > 0 and result.peak_memory["process_peak_rss_mb"] > 0
    # tokens/s counts only what this session trained (steps 3-6), not the tokens of the interrupted session
    assert result.tokens_per_second * result.wall_seconds < result.tokens_seen * 0.9
    for name in ("adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "trainer_state.json",
                 "training_config.json", "loss_curve.png"):
        assert (tmp_path / "adapter" / name).is_file(), name

    merged = tmp_path / "merged"
    merged.mkdir()
    merge_adapter(tmp_path / "adapter", smoke_base_model, "trl", merged)
    assert (merged / "model.safetensors").is_file() and (merged / "generation_config.json").is_file()
    model, tokenizer = load_for_generation(str(merged))
    for folder in (tmp_path / "adapter", merged):  # every saved folder renders with the one template
        assert (folder / "chat_template.jinja").read_text() == chat_template()
    assert model.generation_config.eos_token_id == stop_token_ids(tokenizer)  # stops at <end_of_turn> too
    article = "颱風今天接近東部海面，氣象署發布海上颱風警報。"
    [title] = generate_titles(model, tokenizer, [article], max_new_tokens=8)
    # the oracle: the plain greedy continuation rendered with its special tokens, cut at the first end of turn
    prompt = tokenizer(tokenizer.apply_chat_template(prompt_messages(article), tokenize=False, add_generation_prompt=True),
                       return_tensors="pt", add_special_tokens=False)
    continuation = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    rendered = tokenizer.decode(continuation[0, prompt["input_ids"].shape[1] :], skip_special_tokens=False)
    expected = rendered.split("<end_of_turn>")[0].split(tokenizer.eos_token)[0]
    for special in tokenizer.all_special_tokens:
        expected = expected.replace(special, "")
    assert title == expected.strip()


def test_training_example_puts_the_instruction_in_the_system_turn_and_the_title_in_the_completion():
    example = training_example("  文章內容  ", " 標題 ")
    assert example["prompt"] == [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": "文章內容"}]
    assert example["completion"] == [{"role": "assistant", "content": "標題"}]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lora_dropout": 1.0}, r"lora_dropout must be in \[0, 1\)"),
        ({"lora_r": 0}, "lora_r must be positive"),
        ({"max_seq_length": 100_000}, r"max_seq_length 100000 is outside"),
        ({"precision": "fp16"}, "fp16' overflows in Gemma 3n"),
        ({"max_steps": 0}, "max_steps must be positive"),
        ({"gradient_accumulation_steps": 0}, "gradient_accumulation_steps must be positive"),
    ],
)
def test_training_config_rejects_bad_values_with_what_to_change(change, message):
    with pytest.raises(ValueError, match=message):
        LoraSettings(**change)


@pytest.mark.parametrize(("flags", "expected"), [({"avx2", "avx512_bf16"}, "bf16"), ({"amx_bf16"}, "bf16"),
                                                  ({"avx2", "avx512f"}, "fp32")])
def test_auto_precision_on_a_cpu_is_bf16_only_with_native_bf16(flags, expected, monkeypatch):
    from titlegen_assets.training import environment

    monkeypatch.setattr(environment, "cpu_flags", lambda: flags)
    monkeypatch.setattr(environment, "device_name", lambda: "cpu")
    assert environment.pick_precision("auto") == expected
    assert environment.pick_precision("fp32") == "fp32"


def nan_forward(*dtypes):
    """A TrainerCallback that makes the real model's forward NaN while it computes in one of ``dtypes``: a forward hook
    on the input embeddings turns every hidden state, so the loss the Trainer computes, NaN (TRL's fused head builds
    no logits to poison). Installed at ``on_train_begin``, on the model the Trainer trains."""
    from transformers import TrainerCallback

    class NanForward(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            model.get_input_embeddings().register_forward_hook(
                lambda module, inputs, output: output * float("nan") if output.dtype in dtypes else None
            )

    return NanForward()


def train_in_bf16_with_nan_forward(smoke_base_model, sample_splits, tmp_path, monkeypatch, *nan_dtypes):
    """Two steps of the real smoke model asked to train in bf16, its forward NaN in ``nan_dtypes``: (result, log)."""
    from titlegen_assets.training import environment
    from titlegen_assets.training.lora import train_lora

    monkeypatch.setattr(environment, "pick_precision", lambda requested: "bf16")
    logs = []
    config = LoraSettings(**{**TINY, "max_steps": 2})
    try:
        return train_lora(config, sample_splits, smoke_base_model, tmp_path / "adapter", tmp_path / "work",
                          logs.append, [nan_forward(*nan_dtypes)]), logs
    finally:
        assert any("loss became nan" in line and "in bf16" in line and "retries in fp32" in line for line in logs), logs


@needs_cpu_training
def test_a_bf16_run_whose_forward_turns_nan_is_caught_and_retried_in_fp32(
    smoke_base_model, sample_splits, tmp_path, monkeypatch
):
    import math

    import torch

    result, _ = train_in_bf16_with_nan_forward(smoke_base_model, sample_splits, tmp_path, monkeypatch, torch.bfloat16)
    assert result.precision == "fp32" and result.global_step == 2
    losses = [entry["loss"] for entry in result.log_history if "loss" in entry]
    assert losses and all(math.isfinite(loss) for loss in losses), losses
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


@needs_cpu_training
def test_a_run_whose_forward_is_nan_in_every_precision_stops_with_non_finite_loss_and_saves_nothing(
    smoke_base_model, sample_splits, tmp_path, monkeypatch
):
    import torch

    from titlegen_assets.training import sft

    with pytest.raises(sft.NonFiniteLoss, match=r"loss became nan at step 1 in fp32: lower learning_rate"):
        train_in_bf16_with_nan_forward(smoke_base_model, sample_splits, tmp_path, monkeypatch, torch.bfloat16,
                                       torch.float32)
    assert not (tmp_path / "adapter").exists()


@needs_cpu_training
def test_on_a_cpu_only_the_completion_goes_through_the_output_head_and_the_loss_is_unchanged(
    smoke_base_model, sample_splits, tmp_path, monkeypatch
):
    import datasets
    import torch
    from trl import SFTTrainer
    from trl.trainer import utils as trl_utils

    from titlegen_assets.training import sft, trl_backend

    config = LoraSettings(**TINY)
    splits = datasets.load_from_disk(sample_splits)
    args_for = partial(sft.sft_args, config, tmp_path, "fp32", False)
    trainer, _ = trl_backend.build_trainer(config, smoke_base_model, splits["train"], None, args_for, [])
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    scored = []
    original = trl_utils._ChunkedLogProbFunction.apply
    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply",
                        lambda hidden, *rest: scored.append(hidden.shape[0]) or original(hidden, *rest))
    with torch.no_grad():
        completion_only = trainer.compute_loss(trainer.model, dict(batch))
        every_position = SFTTrainer.compute_loss(trainer, trainer.model, dict(batch))
    shifted_labels = batch["labels"][:, 1:]
    assert scored == [int((shifted_labels != -100).sum()), shifted_labels.numel()]
    assert torch.allclose(completion_only, every_position, rtol=1e-5)


HUGE_PAGES_ASKED_FOR_A_64MB_TENSOR = """
import titlegen_assets, torch
x = torch.ones(2**24)  # 64 MB
start, inside = x.data_ptr(), False
for line in open("/proc/self/smaps"):
    fields = line.split()
    if "-" in fields[0] and len(fields) >= 5:
        low, high = (int(h, 16) for h in fields[0].split("-"))
        inside = low <= start < high
    elif inside and fields[0] == "VmFlags:":
        print("hg" in fields[1:])
"""


def test_step_processes_back_big_cpu_tensors_with_huge_pages():
    """Importing titlegen_assets before torch turns on PyTorch's THP allocation (``THP_MEM_ALLOC_ENABLE``), in a fresh
    process as each Dagster step is: the tensor's mapping is marked for huge pages (``hg``, PyTorch's
    ``madvise(MADV_HUGEPAGE)``, whatever memory the kernel has free); an explicit 0 from the deployment wins."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}

    def asked_for_huge_pages(**extra) -> bool:
        child = subprocess.run([sys.executable, "-c", HUGE_PAGES_ASKED_FOR_A_64MB_TENSOR], env={**env, **extra},
                               capture_output=True, text=True)
        assert child.returncode == 0 and child.stdout.split() in (["True"], ["False"]), child.stderr
        return child.stdout.split() == ["True"]

    assert asked_for_huge_pages()
    assert not asked_for_huge_pages(THP_MEM_ALLOC_ENABLE="0")


def turn_token_trainer(smoke_base_model, sample_splits, output_dir, log=lambda _: None):
    import datasets

    from titlegen_assets.training import sft, trl_backend

    config = LoraSettings(**{**TINY, "max_steps": 3, "checkpoint_steps": 3,
                             "train_tokens": ["<start_of_turn>", "<end_of_turn>"]})
    splits = datasets.load_from_disk(sample_splits)
    args_for = partial(sft.sft_args, config, output_dir, "fp32", False)
    trainer, _ = trl_backend.build_trainer(config, smoke_base_model, splits["train"], None, args_for, [], log=log)
    return trainer


@needs_cpu_training
def test_turn_token_rows_train_in_the_frozen_embedding_exactly_as_peft_own_copy_does(
    smoke_base_model, sample_splits, tmp_path, monkeypatch
):
    """The in-place merge (``trained_rows``, with the embedding's gradient sent back sparse) reads no copy of the
    embedding, gives PEFT's losses and trained rows, and leaves the frozen embedding as it was loaded after training."""
    import torch
    from transformers import TrainerCallback

    from titlegen_assets.training import trained_rows

    class SharesTheFrozenMatrix(TrainerCallback):
        def __init__(self):
            self.seen = []

        def on_step_end(self, args, state, control, model=None, **kwargs):
            head = model.get_output_embeddings()
            self.seen.append(head.weight.data_ptr() == head.token_adapter.base_layer.weight.data_ptr())

    def train(name):
        trainer = turn_token_trainer(smoke_base_model, sample_splits, tmp_path / name)
        embedding = trainer.model.get_input_embeddings()
        frozen = embedding.token_adapter.base_layer.weight.detach().clone()
        watch = SharesTheFrozenMatrix()
        trainer.add_callback(watch)
        trainer.train()
        rows = embedding.token_adapter.trainable_tokens_delta["default"].detach().clone()
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        unchanged = torch.equal(embedding.token_adapter.base_layer.weight, frozen)
        unchanged &= not embedding.token_adapter.base_layer.sparse  # its gradient went back sparse only in training
        trained = not torch.equal(rows, embedding.token_adapter.trainable_tokens_original["default"])
        return losses, rows, watch.seen, unchanged and trained

    row_path = []
    transformed = trained_rows.transformed
    monkeypatch.setattr(trained_rows, "transformed", lambda *a: row_path.append(1) or transformed(*a))
    in_place = train("in-place")
    assert row_path, "TRL's fused head never gave the trained rows their gradient through HeadRows"
    monkeypatch.setattr(trained_rows, "write_in_place", lambda trainer, log: 0)
    peft_copy = train("peft-copy")

    assert in_place[2] == [True] * 3 and peft_copy[2] == [False] * 3
    assert in_place[0] == pytest.approx(peft_copy[0], rel=1e-6)
    assert torch.allclose(in_place[1], peft_copy[1], rtol=1e-5, atol=1e-7)
    assert in_place[3] and peft_copy[3], "the rows did not train, or the frozen embedding kept trained rows or sparse"


@needs_cpu_training  # TRL 1.15's fused head runs Triton kernels only (no GPU here)
@pytest.mark.parametrize("softcap", [None, 30.0])
def test_head_rows_give_the_trained_rows_and_the_hidden_states_the_gradients_of_trl_fused_head(softcap):
    """``HeadRows`` against TRL's own fused head with the whole head's gradient (several vocabulary tiles, a logit
    scale, a temperature, Gemma 3's no-softcap and Gemma 3n's softcap, targets on the trained rows)."""
    import torch
    from trl.trainer import utils as trl_utils

    from titlegen_assets.training import trained_rows

    fused = getattr(trl_utils, trained_rows.FUSED_HEAD)
    torch.manual_seed(0)
    vocab, width, tokens = 300, 16, 12
    base, index = torch.randn(vocab, width), torch.tensor([7, 42])
    targets = torch.randint(0, vocab, (tokens,))
    targets[:3], targets[3] = 42, 7
    upstream = torch.randn(tokens)

    def gradients(head):
        rows = torch.randn(2, width, generator=torch.Generator().manual_seed(1)).requires_grad_()
        hidden = torch.randn(tokens, width, generator=torch.Generator().manual_seed(2)).requires_grad_()
        weight = trained_rows.TrainedRows.apply(base.clone(), rows, index)
        setattr(weight, trained_rows.ROWS, [(rows, index)])
        log_probs = head.apply(hidden, weight, None, targets, 0.7, 64, softcap, 1.3, ("log_probs",))[0]
        (log_probs * upstream).sum().backward()
        return log_probs.detach(), rows.grad, hidden.grad

    whole_head = gradients(fused)
    rows_only = gradients(trained_rows.HeadRows(fused))
    for name, expected, got in zip(("log_probs", "rows", "hidden"), whole_head, rows_only):
        assert torch.allclose(expected, got, rtol=1e-5, atol=1e-6), name
    assert whole_head[1].abs().sum() > 0


def test_without_trl_fused_head_name_the_head_rows_keep_trl_own_gradient_and_the_log_says_so(monkeypatch):
    from titlegen_assets.training import trained_rows

    monkeypatch.setattr(trained_rows, "FUSED_HEAD", "_renamed_in_a_later_trl")
    trainer, logs = SimpleNamespace(compute_loss=print), []
    trained_rows.head_rows_in_fused_head(trainer, logs.append)
    assert trainer.compute_loss is print
    assert logs == [f"TRL {version('trl')} has no trl.trainer.utils._renamed_in_a_later_trl (TRL 1.16 has it): the "
                    "trained rows of a tied output head get their gradient from TRL's own, a 262k-row gradient of the "
                    "whole head on each step"]


def test_without_peft_names_the_turn_token_rows_keep_peft_own_merge_and_the_log_says_so(
    smoke_base_model, sample_splits, tmp_path, monkeypatch
):
    from titlegen_assets.training import trained_rows

    monkeypatch.setattr(trained_rows, "LAYER_ATTRIBUTES", (*trained_rows.LAYER_ATTRIBUTES, "renamed_in_a_later_peft"))
    logs = []
    trainer = turn_token_trainer(smoke_base_model, sample_splits, tmp_path, logs.append)
    layers = [trainer.model.get_input_embeddings().token_adapter, trainer.model.get_output_embeddings().token_adapter]
    assert all(trained_rows.MERGED_WEIGHTS not in vars(layer) for layer in layers)
    assert any("renamed_in_a_later_peft" in line and "PEFT's own merge" in line for line in logs)
