"""The late checks of an accepted answer: the re-ask (P(NOT_FOUND) when the model is shown only the
sentence the answer came from), the answer-type question (P(yes) that the answer is the kind of
thing asked for) and, for concise answers, the answer score over every signal. Each may retract it."""

from __future__ import annotations

import re
import time
from typing import Any, Callable

from tools.answer_score import answer_features, answer_score
from tools.citations import strip_citations
from tools.llm.base import Capabilities
from tools.rag_prompt import NOT_FOUND, PromptParts, answer_type_messages, build_messages, source_window
from tools.rag_result import RagAnswer, retract

__all__ = ["late_checks", "recheck"]


def late_checks(tool: Any, capabilities: Capabilities, res: RagAnswer, shown: dict[int, str]) -> None:
    """The re-ask and the answer-type question for the accepted concise answer `res`, then
    the answer score over every signal; any of them may retract the answer."""
    if capabilities.first_token_probability is not None:
        p = recheck(capabilities.first_token_probability, res, shown)
        if p is not None and tool.max_source_not_found is not None and p >= tool.max_source_not_found:
            retract(
                res,
                f"model: not in the answer's source sentence (P(NOT_FOUND) {p:.2f} >= {tool.max_source_not_found:.2f})",
            )
            return
    if capabilities.yes_probability is not None:
        t0 = time.perf_counter()
        messages = answer_type_messages(res.language, res.question, res.answer)
        p = res.answer_type_probability = capabilities.yes_probability(messages, keep_cache=True)
        res.timings.type_check = time.perf_counter() - t0
        if tool.min_answer_type is not None and p < tool.min_answer_type:
            retract(
                res,
                f"model: the answer is not what the question asks for (P(yes) {p:.2f} < {tool.min_answer_type:.2f})",
            )
            return
    if tool.answer_score is None:
        return
    features = answer_features(
        res.coverage,
        res.grounding,
        res.not_found_probability,
        res.source_not_found_probability,
        res.answer_type_probability,
        strip_citations(res.answer),
    )
    if features is None:
        return
    score = res.answer_score = answer_score(features, tool.answer_score)
    if tool.min_answer_score is not None and score < tool.min_answer_score:
        retract(
            res,
            f"answer score {score:.2f} < {tool.min_answer_score:.2f} (re-ask P(NOT_FOUND) "
            f"{res.source_not_found_probability:.2f}, answer-type P(yes) {res.answer_type_probability:.2f}, "
            f"grounding {res.grounding:.2f})",
        )


def recheck(
    probe: Callable[[list[dict], list[str]], float], res: RagAnswer, shown: dict[int, str], *, new_only: bool = False
) -> float | None:
    """P(NOT_FOUND) when the model is shown only the sentence the answer came from (None when
    no sentence holds it). `new_only`: find that sentence by what the answer adds to the question
    (a sentence answer restates its subject: "The bakery opens at seven" comes from "It opens at seven")."""
    answer = _new_words(res.question, strip_citations(res.answer)) if new_only else res.answer
    window = source_window(res.question, answer or res.answer, [shown[c.number] for c in res.citations])
    if not window:
        return None
    t0 = time.perf_counter()
    messages = build_messages(PromptParts(res.language, True), [("", window)], res.question)
    p = res.source_not_found_probability = probe(messages, [NOT_FOUND])
    res.timings.recheck = time.perf_counter() - t0
    return p


def _new_words(question: str, answer: str) -> str:
    """The answer without the words (Latin) and characters (CJK) it shares with the question."""
    asked = {w.lower() for w in re.findall(r"[A-Za-z0-9]+", question)} | set(re.findall(r"[\u4e00-\u9fff]", question))
    parts = re.findall(r"[A-Za-z0-9]+|[\u4e00-\u9fff]", answer)
    return " ".join(p for p in parts if p.lower() not in asked and p not in asked)
