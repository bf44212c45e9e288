"""A double of the ``unsloth`` package, for the CUDA path's tests on a machine with no GPU.

Stands for Unsloth 2026.10.7 with unsloth_zoo 2026.10.7, the pair constraints/gpu.txt pins (wheels from PyPI, read
2026-11-23; 2026.10.9 has the same signatures and code paths for everything below). Real ``import unsloth`` raises
``NotImplementedError`` without a GPU. Each behaviour below is read from that source:

- ``FastModel.from_pretrained`` (``unsloth/models/loader.py``, ``FastModel.from_pretrained``; ``unsloth/models/vision.py``,
  ``FastBaseModel.from_pretrained``): a config whose ``architectures`` end in ``ForConditionalGeneration`` or that has
  a ``vision_config`` is a VLM, loaded with ``AutoModelForVision2Seq`` and returned with ``AutoProcessor``
  (``auto_processor = AutoProcessor if needs_processor else AutoTokenizer``). So Gemma 3n comes back with a
  ``Gemma3nProcessor``, text-only Gemma 3 (``Gemma3ForCausalLM``) with a tokenizer. A folder holding
  ``adapter_config.json`` loads the adapter's base and puts the adapter on it (loader.py, ``is_peft``). The text
  tokenizer is left with ``padding_side="left"`` (vision.py, ``_generation_padding_side`` for a decoder-only model).
- ``FastModel.get_peft_model`` (loader.py, forwarding to vision.py ``FastBaseModel.get_peft_model``, targets from
  ``unsloth_zoo/peft_utils.py`` ``get_peft_regex``): LoRA on the attention and MLP projections of the language
  model; vision and audio towers only when asked.
- ``FastModel.for_inference`` (vision.py ``FastBaseModel.for_inference``): gradient checkpointing and training mode
  off on every nested ``.model``; refuses a tokenizer passed in place of the model; returns the model.
- ``model.save_pretrained_merged`` (``unsloth/save.py`` ``unsloth_generic_save_pretrained_merged``, bound by
  ``patch_saving_functions``): the LoRA merged into the base weights, written as safetensors with the config and
  the tokenizer or processor passed in; ``merged_16bit`` keeps the base checkpoint's dtype.
- ``unsloth.chat_templates.train_on_responses_only`` (``unsloth_zoo/dataset_utils.py``, re-exported by
  ``unsloth/chat_templates.py``): unwraps a processor to its text tokenizer, tokenizes the two markers without
  special tokens (``force_match=True``: the marker's own ids), tokenizes a split that has no ``input_ids`` yet, and
  sets ``labels``: -100 everywhere except from after each response marker up to and including the ``eos``, or up to
  the next instruction marker, ``bos``, shared turn opener (a special token both markers start with) or the end.
  Rows left with no label are dropped (all of them: ``ValueError``); the collator becomes ``DataCollatorForSeq2Seq``
  on the text tokenizer so the labels survive batching.

Where the double differs, on purpose: signatures are the real ones without the trailing ``*args``/``**kwargs`` the
real functions forward elsewhere, so a misspelt argument raises ``TypeError`` here; for a multimodal config the model
returned is its text decoder (``AutoModelForCausalLM`` on ``config.get_text_config()``), because the real
``Gemma3nForConditionalGeneration`` builds timm's 300M-parameter MobileNetV5 vision tower; the merged folder keeps the
multimodal ``config.json`` it was loaded from, as Unsloth's merge does. No 4-bit loading, no compiled kernels, no
patched trainer: the SFTTrainer the product builds on what this returns is plain TRL.
"""

from __future__ import annotations

import copy
import json
import sys
import types
from pathlib import Path

#: Hub names the product asks for -> the local folder that stands in for that checkpoint.
LOCAL_MODELS: dict[str, str] = {}
#: (function, arguments) of every call, for tests that check what the product asked for.
CALLS: list[tuple[str, dict]] = []

#: Attention and MLP projections (get_peft_regex's attention_tags/mlp_tags on Gemma 3n's linear layers).
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")


def _folder(model_name: str) -> str:
    return LOCAL_MODELS.get(model_name, model_name)


def is_multimodal(config) -> bool:
    """Unsloth's test in loader.py: a ``*ForConditionalGeneration`` architecture or a ``vision_config``."""
    architectures = getattr(config, "architectures", None) or []
    return any(a.endswith("ForConditionalGeneration") for a in architectures) or hasattr(config, "vision_config")


def _load_model(folder: str, config, dtype):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, config=config.get_text_config(), dtype=dtype)
    model._unsloth_double_config = config  # what save_pretrained_merged writes back
    return model


class FastModel:
    @staticmethod
    def from_pretrained(
        model_name="unsloth/Llama-3.2-11B-Vision-Instruct-bnb-4bit", max_seq_length=2048, dtype=None,
        load_in_4bit=True, load_in_8bit=False, load_in_16bit=False, full_finetuning=False, token=None,
        device_map="sequential", device_map_planner_kwargs=None, rope_scaling=None, fix_tokenizer=True,
        trust_remote_code=False, use_gradient_checkpointing="unsloth", resize_model_vocab=None, revision=None,
        return_logits=False, fullgraph=True, use_exact_model_name=False, auto_model=None, whisper_language=None,
        whisper_task=None, unsloth_force_compile=False, offload_embedding=None, float32_mixed_precision=None,
        fast_inference=False, gpu_memory_utilization=0.5, float8_kv_cache=False, random_state=3407,
        max_lora_rank=64, disable_log_stats=True, qat_scheme=None, load_in_fp8=False, unsloth_tiled_mlp=False,
        target_parameters=None, text_only=False,
    ):
        """(model, processor) for a multimodal checkpoint, (model, tokenizer) for a text-only one."""
        from transformers import AutoConfig, AutoProcessor, AutoTokenizer

        CALLS.append(("FastModel.from_pretrained", dict(locals())))
        folder = _folder(model_name)
        adapter_config = Path(folder) / "adapter_config.json"
        base = _folder(json.loads(adapter_config.read_text())["base_model_name_or_path"]) if adapter_config.is_file() else folder
        config = AutoConfig.from_pretrained(base)
        model = _load_model(base, config, dtype)
        if adapter_config.is_file():
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, folder)
        processing_class = (AutoProcessor if is_multimodal(config) and not text_only else AutoTokenizer).from_pretrained(folder)
        _text_tokenizer(processing_class).padding_side = "left"  # vision.py: _generation_padding_side, decoder-only
        _patch_saving_functions(model)
        return model, processing_class

    @staticmethod
    def get_peft_model(
        model, r=16, target_modules=None, lora_alpha=16, lora_dropout=0.0, bias="none",
        finetune_vision_layers=True, finetune_language_layers=True, finetune_attention_modules=True,
        finetune_mlp_modules=True, finetune_last_n_layers=None, layers_to_transform=None, layers_pattern=None,
        use_gradient_checkpointing="unsloth", random_state=3407, max_seq_length=2048, use_rslora=False,
        modules_to_save=None, init_lora_weights=True, loftq_config={}, task_type="CAUSAL_LM",  # noqa: B006
        temporary_location="_unsloth_temporary_saved_buffers", qat_scheme=None, target_parameters=None,
        ensure_weight_tying=None, finetune_audio_layers=False, offload_layers=None, checkpoint_skip_layers=0,
    ):
        import torch
        from peft import LoraConfig, get_peft_model

        CALLS.append(("FastModel.get_peft_model", {k: v for k, v in locals().items() if k != "model"}))
        if not (finetune_vision_layers or finetune_language_layers or finetune_audio_layers):
            raise RuntimeError("Unsloth: No layers to finetune - please select to finetune the vision, language and/or audio layers!")
        if not (finetune_attention_modules or finetune_mlp_modules):
            raise RuntimeError("Unsloth: No modules to finetune - please select to finetune the attention and/or the mlp modules!")
        leaves = (ATTENTION if finetune_attention_modules else ()) + (MLP if finetune_mlp_modules else ())
        towers = [tag for tag, wanted in (("vision", finetune_vision_layers), ("audio", finetune_audio_layers)) if not wanted]
        targets = target_modules or [
            name for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in leaves
            and not any(tag in name for tag in towers)
        ]
        torch.manual_seed(random_state)
        lora = LoraConfig(r=r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, bias=bias, target_modules=targets,
                          use_rslora=use_rslora, modules_to_save=modules_to_save, init_lora_weights=init_lora_weights,
                          task_type=task_type)
        peft_model = get_peft_model(model, lora)
        _patch_saving_functions(peft_model)
        return peft_model

    @staticmethod
    def for_inference(model):
        if not hasattr(model, "parameters"):
            raise TypeError("Unsloth: I think you're passing a tokenizer, not the model to for_inference!")
        CALLS.append(("FastModel.for_inference", {}))
        module = model
        while hasattr(module, "model"):
            module.gradient_checkpointing = False
            module = module.model
        model.eval()
        return model


def _patch_saving_functions(model) -> None:
    model.save_pretrained_merged = types.MethodType(save_pretrained_merged, model)


def save_pretrained_merged(
    self, save_directory, tokenizer=None, save_method="merged_16bit", push_to_hub=False, token=None,
    is_main_process=True, state_dict=None, save_function=None, max_shard_size="5GB", safe_serialization=True,
    variant=None, save_peft_format=True, tags=None, temporary_location="_unsloth_temporary_saved_buffers",
    maximum_memory_usage=0.75, datasets=None, calibration_dataset=None, num_calibration_samples=512,
    max_seq_length=2048, install_missing_dependencies=True, dtype=None,
):
    """The LoRA merged into a copy of the base weights; the in-memory model keeps its adapter, as with Unsloth."""
    CALLS.append(("save_pretrained_merged", {"save_directory": str(save_directory), "save_method": save_method,
                                             "tokenizer": type(tokenizer).__name__}))
    if save_method != "merged_16bit":
        raise NotImplementedError(f"the Unsloth double only does save_method='merged_16bit', not {save_method!r}")
    merged = copy.deepcopy(self).merge_and_unload() if hasattr(self, "merge_and_unload") else self
    merged.save_pretrained(str(save_directory), safe_serialization=True)
    source = getattr(merged, "_unsloth_double_config", None)
    if source is not None and is_multimodal(source):  # a multimodal checkpoint stays multimodal
        source.save_pretrained(str(save_directory))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(save_directory))


def _text_tokenizer(processing_class):
    return processing_class.tokenizer if hasattr(processing_class, "image_processor") or hasattr(processing_class, "tokenizer") else processing_class


def train_on_responses_only(
    trainer, instruction_part=None, response_part=None, force_match=True, tokenizer=None, return_function=False,
    num_proc=None, last_response_only=False, mask_out_tokens=None,
):
    from transformers import DataCollatorForSeq2Seq

    CALLS.append(("train_on_responses_only", {k: v for k, v in locals().items() if k not in ("trainer", "tokenizer")}))
    if instruction_part is None or response_part is None:
        raise NotImplementedError("the Unsloth double does not auto-detect the chat template parts; pass both")
    tokenizer = _text_tokenizer(tokenizer if tokenizer is not None else trainer.processing_class)
    question = tokenizer(instruction_part, add_special_tokens=False).input_ids
    answer = tokenizer(response_part, add_special_tokens=False).input_ids
    if not question or not answer:
        raise ValueError("Unsloth: instruction_part or response_part could not be resolved to a stable token sequence")
    special = {i for i, t in (getattr(tokenizer, "added_tokens_decoder", None) or {}).items() if t.special}
    opener = []
    for q, a in zip(question, answer):
        if q != a or q not in special:
            break
        opener.append(q)
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id

    def at(ids, j, marker):
        return ids[j : j + len(marker)] == marker

    def labels_for(ids):
        labels, spans, n, j = [-100] * len(ids), [], len(ids), 0
        while j < n:
            if at(ids, j, answer):
                start = j = j + len(answer)
                while j < n:
                    token = ids[j]
                    if token == eos:
                        spans.append((start, j + 1))
                        break
                    if token == bos or (opener and at(ids, j, opener)) or at(ids, j, answer):
                        spans.append((start, j))
                        j -= 1
                        break
                    if j == n - 1 or at(ids, j, question):
                        spans.append((start, n if j == n - 1 else j))
                        break
                    j += 1
            j += 1
        for start, end in spans[-1:] if last_response_only else spans:
            labels[start:end] = ids[start:end]
        return labels

    def mask(batch):
        return {"labels": [labels_for(list(ids)) for ids in batch["input_ids"]]}

    if return_function:
        return mask

    def prepare(dataset, name):
        if dataset is None:
            return None
        if "input_ids" not in dataset.column_names:
            field = getattr(trainer.args, "dataset_text_field", None) or "text"
            max_length = getattr(trainer.args, "max_length", None) or 2048
            dataset = dataset.map(lambda b: tokenizer(b[field], truncation=True, max_length=max_length, padding=False),
                                  batched=True, remove_columns=[field])
        dataset = dataset.map(mask, batched=True)
        kept = dataset.filter(lambda row: any(label != -100 for label in row["labels"]))
        if len(kept) == 0:
            raise ValueError(f"Unsloth: train_on_responses_only masked every label to -100 in {name}, so there is "
                             f"nothing to train on. The response marker {response_part!r} was not found in any sample")
        return kept

    trainer.train_dataset = prepare(trainer.train_dataset, "train_dataset")
    trainer.eval_dataset = prepare(trainer.eval_dataset, "eval_dataset")
    trainer.data_collator = DataCollatorForSeq2Seq(tokenizer=tokenizer)
    return trainer


def install(monkeypatch, local_models: dict[str, str], hub_cache=None) -> None:
    """Put the double in ``sys.modules`` as ``unsloth`` and ``unsloth.chat_templates`` for one test; with
    ``hub_cache`` (a folder), the Hugging Face cache of a machine that downloaded those models once: each one's
    ``refs/main`` names a commit, which is what a base model's version records on an offline GPU host."""
    if hub_cache is not None:
        from huggingface_hub import constants

        write_hub_refs(hub_cache, local_models)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache))
    CALLS.clear()
    LOCAL_MODELS.clear()
    LOCAL_MODELS.update(local_models)
    unsloth = types.ModuleType("unsloth")
    unsloth.FastModel = FastModel
    chat_templates = types.ModuleType("unsloth.chat_templates")
    chat_templates.train_on_responses_only = train_on_responses_only
    unsloth.chat_templates = chat_templates
    monkeypatch.setitem(sys.modules, "unsloth", unsloth)
    monkeypatch.setitem(sys.modules, "unsloth.chat_templates", chat_templates)


def write_hub_refs(hub_cache, repo_ids) -> None:
    """``models--<org>--<name>/refs/main`` for each repo id, in the Hugging Face cache layout."""
    from pathlib import Path

    from huggingface_hub.file_download import repo_folder_name

    for repo_id in repo_ids:
        ref = Path(hub_cache) / repo_folder_name(repo_id=repo_id, repo_type="model") / "refs" / "main"
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text("0" * 40)
