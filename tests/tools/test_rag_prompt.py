"""The evidence budget and the question-coverage score of rag_answer's prompt builder."""

from __future__ import annotations

from dataclasses import dataclass

from tools.rag_prompt import coverage, fit_evidence, grounding


@dataclass
class Hit:
    text: str
    start: int = 0


def words(text: str) -> int:
    return len(text.split())


ROCKET = (
    "The rocket was assembled in a hangar near the coast. Its launch code is 4711. "
    "The launch code was chosen by the engineers of the rocket. Painters later gave the rocket a red coat."
)
WEATHER = (
    "Clouds gathered over the hills in the morning. Rain fell for most of the afternoon. "
    "The rocket stayed covered during the storm."
)


def test_the_budget_goes_to_the_passage_about_the_question():
    hits = [Hit(WEATHER, 100), Hit(ROCKET, 500)]  # retrieval ranked the weather passage first
    out = fit_evidence("What is the launch code of the rocket?", hits, budget=30, count=words)
    assert sum(words(t) for *_, t in out) <= 30
    (h1, a1, b1, t1), (h2, a2, b2, t2) = out
    assert (h1, h2) == (hits[0], hits[1])  # rank order kept
    # the rocket passage: its best sentence, then its next best neighbour; the weather passage
    # keeps its one sentence about the question and gets only what the rocket could not use
    assert t2 == "Its launch code is 4711. The launch code was chosen by the engineers of the rocket."
    assert t1 == "Rain fell for most of the afternoon. The rocket stayed covered during the storm."
    for hit, a, b, text in out:  # exact document offsets
        assert hit.text[a - hit.start : b - hit.start] == text


def test_a_low_ranked_passage_keeps_what_the_others_do_not_need():
    fillers = [Hit(f"Sentence {i} is about gardens and flowers in spring time today. " * 3) for i in range(3)]
    answer = Hit("Background words that come first in this passage here. The launch code of the rocket is 4711.")
    out = fit_evidence("launch code of the rocket", fillers + [answer], budget=50, count=words)
    assert [words(t) for *_, t in out] == [11, 11, 11, 17]  # one sentence each, the answer passage whole
    assert out[-1][3] == answer.text


def test_a_passage_whose_best_sentence_does_not_fit_is_left_out():
    long = Hit("word " * 50 + "rocket launch code.")
    out = fit_evidence("rocket launch code", [Hit(ROCKET), long], budget=25, count=words)
    assert [h for h, *_ in out] == [out[0][0]] and out[0][0].text == ROCKET


def test_whole_passages_are_kept_when_they_fit():
    out = fit_evidence("launch code", [Hit(ROCKET, 7)], budget=1000, count=words)
    assert out == [(out[0][0], 7, 7 + len(ROCKET), ROCKET)]


def test_coverage_ignores_question_words():
    question = "北京是什么国家的首都？"
    assert coverage(question, "北京是中华人民共和国的首都。") > coverage(question, "上海是一座城市。")
    assert coverage("Which river does Paris lie on?", "Paris lies on the Seine river.") == 1.0


def test_grounding_reads_the_question_around_the_answers_source_sentence():
    text = "青石镇位于县城西部。镇上的石桥长约四十米。每年十月举办黄酒节。"
    assert grounding("青石镇的石桥有多长？", "约四十米[1]", [text]) >= 0.5  # 石桥 in its sentence, 青石 before it
    assert grounding("青石镇镇长的名字是什么？", "每年十月[1]", [text]) == 0.0  # copied from the festival sentence
    assert grounding("What?", "anything", [text]) == 1.0  # no content features: nothing to check
