"""Regenerate the smoke model's SentencePiece tokenizer from the bundled sample (run by hand, rarely).

The files next to this script are its output and are committed: turning a SentencePiece ``.model`` into a
``tokenizer.json`` needs protobuf >= 7, which Dagster's ``protobuf<7`` pin forbids in the project's environment.
So run it in a throwaway virtual environment::

    python -m venv /tmp/tokvenv && /tmp/tokvenv/bin/pip install "protobuf>=7" sentencepiece transformers
    /tmp/tokvenv/bin/python titlegen_assets/training/smoke_model/make_tokenizer.py

It writes a Gemma-style tokenizer: BPE with byte fallback, no dummy prefix, Gemma's special tokens at Gemma's
ids (pad 0, eos 1, bos 2, unk 3) and the chat turn markers, so the real Gemma 3n chat template applies.
"""

import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parents[1]))

from titlegen_assets.prompts import INSTRUCTION  # noqa: E402

VOCAB_SIZE = 3000
TURN_TOKENS = ["<start_of_turn>", "<end_of_turn>"]


def corpus_lines() -> list[str]:
    rows = [json.loads(line) for line in (HERE.parent / "sample_data" / "zh_tw_news_sample.jsonl").open(encoding="utf-8")]
    lines = [INSTRUCTION, "user", "model", "標題：", "Title:", "以下是"]
    for row in rows:
        lines += [text for text in (row["title"], row["content"]) if text]
    return lines


def main() -> None:
    import sentencepiece as spm
    from transformers import GemmaTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(corpus_lines()), encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(corpus), model_prefix=str(Path(tmp) / "tokenizer"), vocab_size=VOCAB_SIZE, model_type="bpe",
            character_coverage=1.0, byte_fallback=True, split_digits=True, add_dummy_prefix=False,
            remove_extra_whitespaces=False, normalization_rule_name="identity", allow_whitespace_only_pieces=True,
            pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>",
            unk_piece="<unk>", control_symbols=TURN_TOKENS, minloglevel=2,
        )
        tokenizer = GemmaTokenizer.from_pretrained(tmp, add_bos_token=True, add_eos_token=False)
        tokenizer.save_pretrained(str(HERE))
        shutil.copy(Path(tmp) / "tokenizer.model", HERE / "tokenizer.model")  # llama.cpp's GGUF converter reads it
    config_path = HERE / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    for machine_specific in ("vocab_file", "is_local", "local_files_only"):
        config.pop(machine_specific, None)
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
