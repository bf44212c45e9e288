"""Cleaning at corpus scale: throughput, growth, and near-duplicate quality on generated zh-TW news.

Generates articles written the way Taiwanese sites publish them (wire datelines, reporter lines, photo credits and
captions, editor credits with CNA's date code, site footers, and standard closing sentences that survive cleaning),
plants lightly edited copies of some of them under other boilerplate and another title, and runs ``clean_rows``
on the whole list. Every row carries its story id, so the run also reports:
  - recall: share of planted copies dropped as duplicates (goal ≥ 0.95);
  - false merges: distinct stories that lost a row (goal 0).
Goals from issue 14: ≥ 5,000 rows/s on 2 cores; twice the rows in ≤ 2.3 × the time.

    python benchmarks/clean_scale.py --sizes 50000 100000 --repeats 3
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import time

from titlegen_assets.data.cleaning import CleaningRules, clean_rows

CITIES = ["台北", "新北", "桃園", "台中", "台南", "高雄", "基隆", "新竹", "嘉義", "花蓮", "台東", "宜蘭"]
SURNAMES = "王李張劉陳楊黃趙吳周徐孫馬朱胡郭何林羅高鄭梁謝宋唐許韓馮鄧曹彭曾蕭田董潘袁蔡蔣余杜葉程蘇魏呂丁沈"
GIVEN = "志明雅婷家豪怡君俊傑淑芬建宏美玲冠宇佳穎文彬惠如柏宇思妤承翰宜蓁信宏筱涵"
ORGS = ["經濟部", "衛福部", "交通部", "內政部", "教育部", "環境部", "農業部", "金管會", "國發會", "勞動部", "市政府",
        "縣政府", "氣象署", "疾管署", "央行", "主計總處", "消基會", "立法院", "監察院", "法務部"]
CHARS = ("的一是在不了有和人這中大為上個國我以要他時來用們生到作地於出就分對成會可主發年動同工也能下過子說產種面"
         "而方後多定行學法所民得經十三之進著等部度家電力裡如水化高自二理起小物現實加量都兩體制機當使點從業本去把性"
         "好應開它合還因由其些然前外天政四日那社義事平形相全表間樣與關各重新線內數正心反你明看原又麼利比或但質氣第"
         "向道命此變條只沒結解問意建月公無系軍很情者最立代想已通並提直題黨程展五果料象員革位入常文總次品式活設及管特"
         "件長求老頭基資邊流路級少圖山統接知較將組見計別她手角期根論運農指幾九區強放決西被幹做必戰先回則任取據處隊南"
         "給色光門即保治北造百規熱領七海口東導器壓志世金增爭濟階油思術極交受聯什認六共權收證改清己美再採轉更單風切打")
WORDS = [a + b for a in CHARS[:80] for b in CHARS[80:160]]  # 6,400 two-character "words"
BODY = [
    "{org}今天宣布，{w1}{w2}相關的第{n}項措施將在{m}月{d}日上路，預計影響約{k}萬人。",
    "{org}表示，{w1}計畫總經費約新台幣{k}億元，其中{n}成用於{w2}{w3}。",
    "根據{org}統計，今年前{m}個月{w1}案件共{k}件，較去年同期增加{n}%。",
    "{city}一名{w1}業者說，{w2}{w3}的需求明顯增加，訂單已經排到{m}月。",
    "專家分析，{w1}與{w2}的關係密切，若{w3}持續，第{n}季可能出現{w4}。",
    "{org}指出，民眾對{w1}{w2}的疑慮主要集中在{w3}，將在{d}日召開說明會。",
    "地方議員質疑，{w1}預算編列{k}億元卻未說明{w2}，要求{org}在{n}週內提出報告。",
    "現場民眾表示，{w1}{w2}已經持續{n}年，希望{org}能盡快處理{w3}問題。",
]
CLOSINGS = ["民眾如有疑問，可撥打1999市民熱線洽詢。", "相關資訊可至官方網站查詢。", "詳細內容以官方公告為準。"]
OPENERS = ["（中央社記者{name}{city}{d}日電）", "（中央社{city}{d}日電）", "〔記者{name}／{city}報導〕",
           "【記者{name}／{city}即時報導】", "記者{name}／{city}報導\n", ""]
MIDDLES = ["(圖/記者{name}攝)", "（圖／{org}提供）", "（資料照）", "\n▲{org}今天召開記者會說明。（圖／記者{name}攝）\n", ""]
ENDINGS = ["（編輯：{name}）11311{d:02d}", "（責任編輯：{name}）", "（公視新聞）",
           "\n＊珍惜生命，自殺不能解決問題，生命一定可以找到出路。安心專線：1925", "\n※延伸閱讀：{org}最新消息", ""]


def _slots(rng: random.Random) -> dict:
    return {"org": rng.choice(ORGS), "city": rng.choice(CITIES), "n": rng.randint(2, 98), "m": rng.randint(1, 12),
            "d": rng.randint(1, 28), "k": rng.randint(3, 900), "name": rng.choice(SURNAMES) + rng.choice(GIVEN),
            **{f"w{i}": rng.choice(WORDS) for i in range(1, 5)}}


def _boilerplate(rng: random.Random, pool: list[str]) -> str:
    return rng.choice(pool).format(**_slots(rng))


def _article(rng: random.Random, story: int) -> tuple[list[str], str]:
    sentences = [template.format(**_slots(rng)) for template in rng.choices(BODY, k=rng.randint(7, 12))]
    sentences.append(rng.choice(CLOSINGS))  # a standard closing sentence many articles share
    title = f"{rng.choice(ORGS)}{rng.choice(WORDS)}{rng.choice(WORDS)}新制 第{story}案{rng.choice(WORDS)}上路"
    return sentences, title


def _published(rng: random.Random, sentences: list[str]) -> str:
    body = list(sentences)
    body.insert(rng.randint(1, len(body) - 1), _boilerplate(rng, MIDDLES))
    return _boilerplate(rng, OPENERS) + "".join(body) + _boilerplate(rng, ENDINGS)


def _lightly_edited(rng: random.Random, sentences: list[str]) -> list[str]:
    """One or two words replaced, as when a site rewrites a wire story."""
    edited = list(sentences)
    for _ in range(rng.randint(1, 2)):
        i = rng.randrange(len(edited) - 1)
        word = next((w for w in WORDS[rng.randrange(100):] if w in edited[i]), None)
        edited[i] = edited[i].replace(word, rng.choice(WORDS), 1) if word else edited[i].replace("今天", "昨天")
    return edited


def generate(n: int, copy_share: float = 0.05, seed: int = 0) -> list[dict]:
    """``n`` rows: distinct stories and planted near-copies (``copy_of`` names the story they repeat)."""
    rng = random.Random(seed)
    rows, originals = [], []
    while len(rows) < n:
        if originals and rng.random() < copy_share:
            story, sentences = rng.choice(originals)
            title = f"{rng.choice(CITIES)}{rng.choice(WORDS)}最新 第{story}案{rng.choice(WORDS)}將實施"
            rows.append({"content": _published(rng, _lightly_edited(rng, sentences)), "title": title,
                         "story": story, "copy_of": story})
        else:
            story = len(originals)
            sentences, title = _article(rng, story)
            originals.append((story, sentences))
            rows.append({"content": _published(rng, sentences), "title": title, "story": story, "copy_of": -1})
    return rows


def _cpu_seconds() -> float:
    """CPU time of this process and its finished worker processes."""
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def measure(rows: list[dict], workers: int) -> dict:
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    report = clean_rows(rows, CleaningRules(), workers=workers)
    seconds, cpu_seconds = time.perf_counter() - start, _cpu_seconds() - cpu_start
    kept = report.kept
    planted = sum(r["copy_of"] >= 0 for r in rows)
    caught = planted - sum(r["copy_of"] >= 0 for r in kept)
    stories = {r["story"] for r in rows}
    merged = len(stories - {r["story"] for r in kept})  # a story none of whose rows survived
    lost_originals = sum(r["copy_of"] < 0 for r in rows) - sum(r["copy_of"] < 0 for r in kept)
    other_drops = {k: v for k, v in report.dropped.items() if k not in ("near_duplicate", "exact_duplicate") and v}
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "rows_per_s": len(rows) / seconds, "recall": caught / planted if planted else 1.0,
            "planted": planted, "stories_lost": merged, "originals_dropped": lost_originals,
            "drops": dict(report.dropped), "other_drops": other_drops}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (the goal is set for 2 cores)")
    args = parser.parse_args()
    import datasketch  # noqa: F401  (imported once before timing: scipy makes it take seconds on a cold start)

    medians = {}
    for size in args.sizes:
        rows = generate(size)
        runs = [measure(rows, args.workers) for _ in range(args.repeats)]
        first = runs[0]  # recall and merges are the same in every run: the input and the code are deterministic
        seconds = statistics.median(r["seconds"] for r in runs)
        cpu = statistics.median(r["cpu_seconds"] for r in runs)
        medians[size] = seconds
        each = ", ".join(f"{r['seconds']:.1f}" for r in runs)
        print(f"{size:>7} rows: wall median {seconds:.1f} s ({each}), {size / seconds:,.0f} rows/s; "
              f"CPU median {cpu:.1f} s, {size / cpu:,.0f} rows per CPU-second; "
              f"planted copies {first['planted']}, recall {first['recall']:.4f}; "
              f"distinct stories lost {first['stories_lost']}, originals dropped {first['originals_dropped']}; "
              f"drops {first['drops']}", flush=True)
    sizes = sorted(medians)
    for small, large in zip(sizes, sizes[1:]):
        print(f"time ratio {large}/{small} rows: {medians[large] / medians[small]:.2f} "
              f"(rows ratio {large / small:.2f})")


if __name__ == "__main__":
    main()
