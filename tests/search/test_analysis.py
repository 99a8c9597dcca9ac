"""Tests for the keyword analyzer: normalization, dictionary, synonyms, stemming, highlights."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
from whoosh import fields, qparser, query
from whoosh.filedb.filestore import RamStorage
from whoosh.index import Index

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


def test_highlight_without_match_shows_the_start() -> None:
    assert analysis.highlight("a < b " * 10, ["nothing"], max_len=6) == "a &lt; b …"


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
