"""The bundled sample's test split as the demo cleans and splits it (seed 42, 10 % validation, 10 % test): the
articles the GGUF and serving benchmarks send."""

from titlegen_assets.data.cleaning import CleaningRules, clean_rows
from titlegen_assets.data.sources import load_file, sample_path
from titlegen_assets.data.splitting import split_rows


def sample_test_rows(content_max_chars: int) -> list[dict]:
    rows = clean_rows(load_file(sample_path(), "content", "title").rows,
                      CleaningRules(content_max_chars=content_max_chars)).kept
    return split_rows(rows, 42, 0.1, 0.1)["test"]
