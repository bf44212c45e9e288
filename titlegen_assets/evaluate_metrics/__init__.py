"""``evaluate`` metric modules shipped with titlegen; load them by path with ``evaluate.load``."""

from pathlib import Path

#: Path of the zh-TW headline metric script, for ``evaluate.load(ZH_HEADLINE)``.
ZH_HEADLINE = str(Path(__file__).with_name("zh_headline.py"))
