"""Tests for the keyword analyzer: normalization, dictionary, synonyms, stemming, highlights."""

from __future__ import annotations

import pickle
import random
import re
import shutil
from collections.abc import Callable
from html import unescape
from pathlib import Path

import pytest
from whoosh import fields, qparser, query
from whoosh.filedb.filestore import RamStorage
from whoosh.index import Index
from whoosh.lang import porter2

from kb.demo import demo_records
from search import analysis, lexicon

DOCS = {
    "double11": "双十一大促复盘：新客首单满减券核销率偏低。",
    "double12": "雙十二預熱活動在小程序上線，轉化率不錯。",
    "wecom": "企业微信社群运营：每周三次推送，群活跃度稳定。",
    "recall": "沉睡用户召回：短信加优惠券，召回率 8%。",
    "english": "The campaign targeted new users with a referral poster.",
    "fraud": "羊毛党集中薅羊毛，K值 1.3，复购率下降。",
}


@pytest.fixture(scope="module")
def storage() -> RamStorage:
    """Return an in-memory storage holding one index of DOCS."""
    storage = RamStorage()
    schema = fields.Schema(
        id=fields.ID(stored=True, unique=True),
        body=fields.TEXT(analyzer=analysis.make_analyzer(), stored=True),
    )
    ix = storage.create_index(schema)
    with ix.writer() as writer:
        for doc_id, body in DOCS.items():
            writer.add_document(id=doc_id, body=body)
    return storage


@pytest.fixture(scope="module")
def ix(storage: RamStorage) -> Index:
    """Return the index of DOCS."""
    return storage.open_index()


def search_ids(ix: Index, text: str) -> set[str]:
    """Return the ids of the documents holding every query term of ``text``."""
    terms = analysis.analyze(text, mode="query")
    assert terms, f"{text!r} produced no terms"
    with ix.searcher() as searcher:
        hits = searcher.search(query.And([query.Term("body", t) for t in terms]), limit=None)
        return {hit["id"] for hit in hits}


@pytest.mark.parametrize(
    "text",
    [
        "双十一",
        "雙十一",
        "双11",
        "双 11",
        "双１１",
        "11.11",
        "１１．１１",
        "ＤＯＵＢＬＥ　１１",
        "Double Eleven",
    ],
)
def test_double_eleven_variants_find_the_double_eleven_doc(ix: Index, text: str) -> None:
    assert search_ids(ix, text) == {"double11"}


@pytest.mark.parametrize("text", ["2023.11.11", "转化率11.11%", "售价11.11元", "双110", "6180元"])
def test_look_alike_numbers_are_not_double_eleven(text: str) -> None:
    assert "双十一" not in analysis.analyze(text)
    assert "618" not in analysis.analyze(text)


@pytest.mark.parametrize(
    ("text", "doc_id"),
    [
        ("企微", "wecom"),
        ("企微社群", "wecom"),
        ("唤醒", "recall"),
        ("挽回沉默用户", "recall"),
        ("coupons", "recall"),
        ("薅羊毛", "fraud"),
        ("双十二", "double12"),
        ("转化率", "double12"),
        ("conversion", "double12"),
        ("campaigns", "english"),
        ("Campaigns", "english"),
        ("ｃａｍｐａｉｇｎｓ", "english"),
        ("referrals", "english"),
    ],
)
def test_synonyms_stems_and_scripts_meet(ix: Index, text: str, doc_id: str) -> None:
    assert search_ids(ix, text) == {doc_id}


def test_query_parser_uses_the_analyzer_in_query_mode(ix: Index) -> None:
    parser = qparser.QueryParser("body", ix.schema)
    with ix.searcher() as searcher:
        phrase = searcher.search(parser.parse('"沉睡用户召回"'))
        words = searcher.search(parser.parse("雙十一 满减券"))
        assert [hit["id"] for hit in phrase] == ["recall"]
        assert [hit["id"] for hit in words] == ["double11"]


def test_schema_pickles_and_reopens(storage: RamStorage) -> None:
    analyzer = analysis.make_analyzer()
    assert pickle.loads(pickle.dumps(analyzer)) == analyzer  # noqa: S301 -- our own bytes
    reopened = storage.open_index()
    assert search_ids(reopened, "K值") == {"fraud"}


@pytest.mark.parametrize("word", ["复购率", "羊毛党", "K值", "企业微信", "高价值会员", "新客首单"])
def test_domain_words_are_single_tokens(word: str) -> None:
    assert analysis.analyze(word, mode="query") == [lexicon.normalize_entry(word)]


def test_every_dictionary_word_is_one_query_term() -> None:
    lex = lexicon.current()
    split = [w for w in [*lex.words, *lex.phrases] if len(analysis.analyze(w, mode="query")) != 1]
    assert split == []


def test_domain_words_stay_whole_in_context() -> None:
    terms = analysis.analyze("羊毛党让K值虚高，复购率下降", mode="query")
    assert {"羊毛党", "k值", "复购率"} <= set(terms)


def test_index_mode_adds_inner_words_query_mode_does_not() -> None:
    assert analysis.analyze("羊毛党") == ["羊毛党", "羊毛"]
    assert analysis.analyze("羊毛党", mode="query") == ["羊毛党"]


def test_stop_words_and_punctuation_are_dropped() -> None:
    assert analysis.analyze("我们的活动和复盘，是在618。") == ["活动", "复盘", "618"]
    assert analysis.analyze("The results of a campaign") == ["result", "campaign"]
    assert analysis.analyze("，。！？ … ——  ") == []


def test_token_offsets_point_into_the_original_text() -> None:
    text = "面积１０㎡的雙十一ＧＭＶ"
    tokens = [
        (t.text, text[t.startchar : t.endchar])
        for t in analysis.make_analyzer()(text, chars=True, mode="query")
    ]
    assert tokens == [
        ("面积", "面积"),
        ("10m2", "１０㎡"),
        ("双十一", "雙十一"),
        ("成交额", "ＧＭＶ"),
    ]


def test_highlight_marks_traditional_original_and_escapes() -> None:
    text = "今年<script>alert('x')</script>的雙十一活動，K值達到1.3"
    html = analysis.highlight(text, analysis.analyze("双11 k值", mode="query"))
    assert html == (
        "今年&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;的<mark>雙十一</mark>活動，"
        "<mark>K值</mark>達到1.3"
    )
    assert "<script>" not in html


def test_highlight_merges_overlapping_matches() -> None:
    # Index-mode tokens of 雙十一 include 双十 and 十一: one mark, not nested or partial ones.
    html = analysis.highlight("雙十一大促", ["十一", "双十一", "双十"])
    assert html == "<mark>雙十一</mark>大促"


def test_highlight_marks_spaced_phrases_and_long_inner_words() -> None:
    assert (
        analysis.highlight("今年 Double  11 大促", analysis.analyze("双十一", mode="query"))
        == "今年 <mark>Double 11</mark> 大促"
    )
    assert (
        analysis.highlight("企业微信社群运营", analysis.analyze("企微", mode="query"))
        == "<mark>企业微信</mark>社群运营"
    )


def test_highlight_windows_long_text_around_the_best_match() -> None:
    text = "背景介绍。" * 60 + "结果：沉睡用户召回率 12%，羊毛党导致核销率虚高。" + "其他。" * 60
    html = analysis.highlight(text, analysis.analyze("唤醒 羊毛党", mode="query"), max_len=40)
    assert html.startswith("…结果：沉睡用户<mark>召回</mark>率 12%，<mark>羊毛党</mark>")
    assert html.endswith("…")
    assert len(html.replace("<mark>", "").replace("</mark>", "")) <= 42


def test_marked_spans_are_what_highlight_marks_with_their_terms() -> None:
    text = "Coupon abuse & R&D：会员召回，沉睡会员"
    terms = analysis.analyze("abuse R&D 会员 召回", mode="query")
    spans = analysis.marked_spans(text, terms)
    html = analysis.highlight(text, terms, len(text) + 1)
    marked = [unescape(m) for m in re.findall(r"<mark>(.*?)</mark>", html)]
    assert [surface for surface, _ in spans] == marked
    assert spans[0] == ("abuse", frozenset({"abus"}))
    assert all(found and found <= set(terms) for _, found in spans)
    for record in demo_records()[:20]:  # the same on real retros
        for field in (record["title"], record["lessons"]):
            html = analysis.highlight(field, terms, len(field) + 1)
            marked = [unescape(m) for m in re.findall(r"<mark>(.*?)</mark>", html)]
            assert [s for s, _ in analysis.marked_spans(field, terms)] == marked


def test_highlight_without_match_shows_the_start() -> None:
    assert analysis.highlight("a < b " * 10, ["nothing"], max_len=6) == "a &lt; b …"


# Highlight queries for the pre-filter's equivalence tests: scripts, widths, spacing, synonyms,
# inflected English, phrases, numbers, stop words, and words found nowhere; " | " separates them.
HIGHLIGHT_QUERIES = [
    words
    for line in (
        # Simplified Chinese: synonym groups and domain words
        "双十一 | 双11 | 双 11 | 光棍节 | 双十二 | 双12 | 618 | 六一八 | 618大促 | 企微 | 企业微信",
        "企微社群 | 企业微信社群 | 私域流量 | 小程序 | 公众号 | 直播带货 | 短视频 | 拉新 | 获客",
        "促活 | 留存 | 召回 | 唤醒 | 沉睡用户召回 短信 | 裂变 | 老带新 | 种草 | 复购 | 复购率",
        "拼团 宝妈 | 团购 | 高价值会员 | 羊毛党 | 薅羊毛 | 优惠券 | 满减券 叠加 | 券 | 核销率",
        "转化率 | 客单价 | 毛利 | 风控 | 新人红包 | 数据泡沫 观看人次 | 会员积分 | 大促 | 预算超支",
        "我们的活动",
        # Traditional Chinese
        "雙十一 | 雙十二預熱 | 優惠券 | 轉化率 | 復購率 | 會員 | 企業微信 | 沉睡用戶 | 直播帶貨",
        # Mixed and full-width
        "K值 | k值 | Ｋ值 | ＧＭＶ | ＲＯＩ | １１．１１ | 11.11 | 12.12 | ６１８ | App推送 | A/B测试",
        "AB测试 | 7日留存 | 30日留存 | ｃｏｕｐｏｎｓ | ＤＯＵＢＬＥ　１１",
        # English: inflections, phrases, acronyms
        "coupons | coupon abusers | campaigns | campaign | strategy | strategies | referrals",
        "conversion rate | conversions | retention | livestreaming | live stream | Double Eleven",
        "double twelve | mini program | private traffic | win-back | winback | group buying",
        "dormant users | churned users | repurchase | acquisition | new users | seeding",
        "lessons learned | users | GMV | ROI | CTR | VIP | UV",
        # Numbers, and words found nowhere
        "2023 | 5.8 | 41% | 620万 | 1.3 | 区块链 | blockchain | xyz",
    )
    for words in line.split(" | ")
]

# Texts the demo corpus lacks: English, full-width, spaced and Traditional variants, look-alikes.
EDGE_TEXTS = [
    "Stacked coupons were abused; the campaign's conversion rate fell. Strategies: win-back.",
    "Ｔｈｅ ｃａｍｐａｉｇｎ ｒａｎ ｆｏｒ ｔｗｏ ｗｅｅｋｓ，ＤＯＵＢＬＥ　１１ coupons were stacked.",
    "今年 Double  11 大促，雙 十一 预热；售价11.11元，转化率11.11%，2023.11.11 上线。",
    "企业微信社群运营，企微群 3 个；K 值 1.3，k-factor 高，a/b 测试 胜出。",
    "Retention D30 improved after the livestreaming; dormant   users were reactivated.",
    "coupons2023 campaignss strategically referral-program ROI1:4 GMV+35%",
    "面积１０㎡的雙十一ＧＭＶ，⑩倍",
]


def highlight_texts() -> list[str]:
    """Return every text field of the demo campaigns and their documents, plus EDGE_TEXTS."""
    fields = ("title", "summary", "went_well", "problems", "lessons", "recommendations", "goal")
    texts = [r[f] for r in demo_records() for f in fields if r.get(f)]
    texts += [d["body"] for r in demo_records() for d in r.get("documents", []) if d.get("body")]
    return texts + EDGE_TEXTS


def count_segmentations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the normalized texts ``_segment`` is called with from now on."""
    calls: list[str] = []
    segment: Callable[..., list[analysis.Piece]] = analysis._segment

    def counting(norm: str, *args: object, **kwargs: object) -> list[analysis.Piece]:
        calls.append(norm)
        return segment(norm, *args, **kwargs)

    monkeypatch.setattr(analysis, "_segment", counting)
    return calls


def test_highlight_equals_full_segmentation_on_the_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = highlight_texts()
    queries = {words: analysis.analyze(words, mode="query") for words in HIGHLIGHT_QUERIES}
    calls = count_segmentations(monkeypatch)
    marked = 0
    for text in texts:
        max_len = len(text) + 1 if len(text) < 80 else 160  # titles whole, as kb shows them
        for words, terms in queries.items():
            expected = analysis._highlight_reference(text, terms, max_len)
            assert analysis.highlight(text, terms, max_len) == expected, (text, words)
            marked += "<mark>" in expected
    pairs = len(texts) * len(queries)
    skipped = 2 * pairs - len(calls)  # the reference segments every pair
    # Not vacuous: many pairs have marks, and most of those without were never segmented.
    assert marked > 1000
    assert skipped > (pairs - marked) // 2


def test_highlight_equals_full_segmentation_on_random_pieces() -> None:
    # Random cuts of corpus texts, as queries and as texts: cuts inside words, phrases and
    # numbers, with the index-mode terms (sub-words too) of other random pieces as wanted terms.
    rng = random.Random(20241122)  # noqa: S311  # test data, not secrets
    texts = highlight_texts()

    def piece() -> str:
        text = rng.choice(texts)
        start = rng.randrange(len(text))
        return text[start : start + rng.randint(1, 60)]

    for _ in range(8000):
        text = piece()
        wanted = {*analysis.analyze(piece()), *analysis.analyze(rng.choice(HIGHLIGHT_QUERIES))}
        if rng.random() < 0.3:
            wanted |= set(analysis.analyze(text[rng.randrange(len(text)) :]))  # likely marks
        assert analysis.highlight(text, wanted, 40) == analysis._highlight_reference(
            text, wanted, 40
        ), (text, wanted)


def test_highlight_skips_segmentation_without_a_candidate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terms = analysis.analyze("coupons 唤醒", mode="query")  # 优惠券 (券, coupon…), 召回 (回流…)
    calls = count_segmentations(monkeypatch)
    assert analysis.highlight("优惠力度大，短信触达 12 万人。", terms) == (
        "优惠力度大，短信触达 12 万人。"
    )
    assert analysis.highlight("The cooperation converted poorly.", terms) == (
        "The cooperation converted poorly."
    )
    assert calls == []
    # A candidate costs a segmentation, even one yielding no mark (满减券 is one word, not 券).
    assert analysis.highlight("满减券 3 张", terms) == "满减券 3 张"
    assert analysis.highlight("优惠券 3 张", terms) == "<mark>优惠券</mark> 3 张"
    assert analysis.highlight("Two COUPONS", terms) == "Two <mark>COUPONS</mark>"
    assert analysis.highlight("沉睡用户回流", terms) == "沉睡用户<mark>回流</mark>"
    assert len(calls) == 4


def add_synonym(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group: str) -> None:
    """Make the lexicon read the shipped synonyms plus ``group`` (a line of synonyms.txt)."""
    changed = tmp_path / "synonyms.txt"
    changed.write_text(
        lexicon.SYNONYMS_PATH.read_text(encoding="utf-8") + f"\n{group}\n", encoding="utf-8"
    )
    monkeypatch.setattr(lexicon, "SYNONYMS_PATH", changed)


def test_highlight_candidates_follow_the_lexicon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "Campaigns for new users"
    assert analysis.highlight(text, analysis.analyze("活动", mode="query")) == text
    add_synonym(tmp_path, monkeypatch, "活动 = campaign")
    assert analysis.highlight(text, analysis.analyze("活动", mode="query")) == (
        "<mark>Campaigns</mark> for new users"
    )


def stem_test_words() -> set[str]:
    """Return English words, Porter2 suffix stacks and random letter strings to stem."""
    rng = random.Random(7)  # noqa: S311  # test data, not secrets
    # Every suffix Porter2 rewrites, from its own tables, and the endings of steps 0 to 1c.
    suffixes = [
        *(end for end, _, _ in (*porter2.s2_triples, *porter2.s3_triples)),
        *porter2.s4_delete_list,
        *porter2.s1b_suffixes,
        *["s", "es", "ies", "ied", "sses", "us", "ss", "eed", "eedly", "sion", "tion", "y", "ly"],
    ]
    roots = {w for t in highlight_texts() for w in re.findall("[a-z]+", t.lower())}
    roots |= {"gener", "arsen", "commun", "sky", "dy", "ly", "ty", "hop", "plan", "agre", "y"}
    words = set(roots)
    for root in sorted(roots):
        for _ in range(20):
            stacked = root + "".join(rng.choices(suffixes, k=rng.randint(1, 3)))
            words.add(stacked)
    letters = "aeiouybcdglmnrstz"
    words |= {"".join(rng.choices(letters, k=rng.randint(1, 14))) for _ in range(20_000)}
    return words


def test_porter2_keeps_the_first_letter_and_appends_at_most_four() -> None:
    # The pre-filter's premise: stem(w) == w[:p] + at most _STEM_TAIL letters, p >= 1.
    tail = analysis._STEM_TAIL
    broken = []
    for word in stem_test_words():
        stem = lexicon.stem_ascii(word)
        if not (re.fullmatch("[a-z]+", stem) and word.startswith(stem[: max(1, len(stem) - tail)])):
            broken.append((word, stem))
    assert broken == []


def test_fingerprint_follows_the_synonym_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = analysis.analyzer_fingerprint()
    copy = tmp_path / "synonyms.txt"
    shutil.copyfile(lexicon.SYNONYMS_PATH, copy)
    monkeypatch.setattr(lexicon, "SYNONYMS_PATH", copy)
    assert analysis.analyzer_fingerprint() == original  # content, not path
    with copy.open("a", encoding="utf-8") as f:
        f.write("\n活动 = campaign\n")
    changed = tmp_path / "changed.txt"  # a new path: loaded lexicons are cached per path
    copy.rename(changed)
    monkeypatch.setattr(lexicon, "SYNONYMS_PATH", changed)
    assert analysis.analyzer_fingerprint() != original
    assert analysis.analyze("campaigns") == ["活动"]


def test_a_word_in_two_synonym_groups_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "synonyms.txt"
    bad.write_text("召回 = 唤醒\n拉新 = 唤醒\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"synonyms.txt:2: '唤醒'"):
        lexicon.load(lexicon.USERDICT_PATH, bad, lexicon.STOPWORDS_PATH)


def test_a_text_is_segmented_once_for_any_terms(monkeypatch: pytest.MonkeyPatch) -> None:
    # A result's title and fields are highlighted with the query's terms and again with the
    # matched ones; the second time (and every later search) reads the span cache.
    monkeypatch.setattr(analysis, "_span_cache", None)
    calls = count_segmentations(monkeypatch)
    text = "私域社群复购：老会员领券后复购率提升，优惠券叠加被羊毛党利用。"
    for words in ("复购", "优惠券", "会员 羊毛党", "复购 私域 优惠券"):
        terms = analysis.analyze(words, mode="query")
        assert analysis.highlight(text, terms) == analysis._highlight_reference(text, terms)
    of_text = [norm for norm in calls if norm.startswith("私域社群")]  # not the queries'
    assert len(of_text) == 1 + 4  # once for the cache, once per reference


def test_span_cache_is_bounded_and_per_lexicon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analysis, "_span_cache", None)
    monkeypatch.setattr(analysis, "SPAN_CACHE_TOKENS", 200)
    texts = [f"第{n}场大促的优惠券核销率偏低，复购一般。" for n in range(40)]
    terms = analysis.analyze("优惠券 复购", mode="query")
    for text in texts:
        assert analysis.highlight(text, terms) == analysis._highlight_reference(text, terms)
    cache = analysis._span_cache
    assert cache is not None
    assert 0 < cache.tokens <= 200
    assert len(cache._entries) < len(texts)
    assert texts[-1] in cache._entries
    assert texts[0] not in cache._entries  # the least recently used went first
    # A text cached under one lexicon is segmented again under another (synonyms changed).
    text = "Campaigns for new users"
    assert analysis.highlight(text, analysis.analyze("campaign", mode="query")) == (
        "<mark>Campaigns</mark> for new users"
    )
    assert analysis.highlight(text, analysis.analyze("活动", mode="query")) == text
    add_synonym(tmp_path, monkeypatch, "活动 = campaign")
    assert analysis.highlight(text, analysis.analyze("活动", mode="query")) == (
        "<mark>Campaigns</mark> for new users"
    )
