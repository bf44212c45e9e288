"""A recording double of the ``unsloth`` package (2026.10.x), for the Unsloth backend's tests on a machine with no GPU.

Stands for: ``unsloth.FastModel.from_pretrained``, ``unsloth.FastModel.get_peft_model`` (``FastBaseModel``), and
``unsloth.chat_templates.train_on_responses_only`` (re-exported from ``unsloth_zoo.dataset_utils``). Each function
here has the real keyword names and defaults, copied from those sources, but no ``**kwargs``: a misspelt argument
raises ``TypeError`` here, where the real library might swallow it. Calls are recorded in ``CALLS``; the model and
tokenizer returned are the smoke Gemma 3n loaded with transformers, with LoRA added by PEFT, so the SFTTrainer that
the backend builds on them is real.
"""

import sys
import types

CALLS: list[tuple[str, dict]] = []
#: The local folder that stands in for whatever model name the backend asks for.
LOCAL_MODEL: dict[str, str] = {}


class FastModel:
    @staticmethod
    def from_pretrained(
        model_name="unsloth/Llama-3.2-11B-Vision-Instruct-bnb-4bit", max_seq_length=2048, dtype=None,
        load_in_4bit=True, load_in_8bit=False, load_in_16bit=False, full_finetuning=False, token=None,
        device_map="sequential", rope_scaling=None, fix_tokenizer=True, trust_remote_code=False,
        use_gradient_checkpointing="unsloth", resize_model_vocab=None, revision=None, return_logits=False,
        fullgraph=True, use_exact_model_name=False, auto_model=None, whisper_language=None, whisper_task=None,
        unsloth_force_compile=False, fast_inference=False, gpu_memory_utilization=0.5, float8_kv_cache=False,
        random_state=3407, max_lora_rank=64, disable_log_stats=True, qat_scheme=None, load_in_fp8=False,
        unsloth_tiled_mlp=False, target_parameters=None, text_only=False,
    ):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        CALLS.append(("FastModel.from_pretrained", dict(locals())))
        folder = LOCAL_MODEL["path"]
        return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)

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
        from peft import LoraConfig, get_peft_model

        CALLS.append(("FastModel.get_peft_model", {k: v for k, v in locals().items() if k != "model"}))
        modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        return get_peft_model(model, LoraConfig(r=r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                                                target_modules=modules, task_type="CAUSAL_LM"))


def train_on_responses_only(
    trainer, instruction_part=None, response_part=None, force_match=True, tokenizer=None, return_function=False,
    num_proc=None, last_response_only=False, mask_out_tokens=None,
):
    CALLS.append(("train_on_responses_only", {k: v for k, v in locals().items() if k != "trainer"}))
    return trainer


def install(monkeypatch, local_model: str) -> None:
    """Put the double in ``sys.modules`` as ``unsloth`` and ``unsloth.chat_templates`` for one test."""
    CALLS.clear()
    LOCAL_MODEL["path"] = local_model
    unsloth = types.ModuleType("unsloth")
    unsloth.FastModel = FastModel
    chat_templates = types.ModuleType("unsloth.chat_templates")
    chat_templates.train_on_responses_only = train_on_responses_only
    unsloth.chat_templates = chat_templates
    monkeypatch.setitem(sys.modules, "unsloth", unsloth)
    monkeypatch.setitem(sys.modules, "unsloth.chat_templates", chat_templates)
