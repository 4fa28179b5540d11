"""rag_answer: answer a question from the knowledge base, with citations that are checked.

retrieve (hybrid) -> optional rerank (LLM yes/no, or a local cross-encoder) -> no-answer gate ->
fit the evidence into a token budget (contiguous sentence windows, exact offsets) -> generate
(concise answers: a verbatim copy of a span, tools.llm.copy_constraint) -> check every citation ->
grounding, then the late checks of a concise answer (a re-ask over its source sentence, the
answer-type question) and the answer score over every signal (tools.answer_score). `stream()`
yields text pieces (invented citations filtered out) and then the `RagAnswer`; `run()` returns
the `RagAnswer`.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

from polymodal.errors import InputError, ToolError
from polymodal.lazy import load_once
from tools.answer_score import ANSWER_SCORE, MIN_ANSWER_SCORE, check_weights
from tools.base import Cues, PlanExample, Tool, ToolContext
from tools.citations import CitationStreamFilter, check_citations, strip_citations
from tools.llm.base import Capabilities, yes_probability
from tools.rag_checks import late_checks, recheck
from tools.rag_prompt import (
    NOT_FOUND,
    PromptParts,
    build_messages,
    coverage,
    fit_evidence,
    grounding,
    language_of,
    not_found_text,
    sentinel_prefix,
    shown_text,
)
from tools.rag_result import Citation, RagAnswer, RagTimings, citation, declines, quote, retract

__all__ = ["RagAnswerTool", "RagAnswer", "Citation", "RagTimings"]


# Kinds of document people keep: a request about what one says is a knowledge-base question.
_DOCUMENT_NOUNS = (
    r"notes?|docs?|documents?|guides?|manuals?|handbooks?|policy|policies|reports?|minutes|files?|papers?|articles?|"
    r"collection|records?|recipes?|contracts?|specs?|specifications?|wiki|readme|slides?|transcripts?|emails?|"
    r"books?|textbooks?|journals?|logs?|plans?|proposals?|briefs?|memos?|letters?|instructions?|documentation"
)
_ZH_DOCUMENT_NOUNS = (
    r"笔记|文档|手册|纪要|资料|报告|政策|规定|合同|论文|说明书|记录|指南|章程|计划书|方案|教程|日志|邮件|课件|讲义|"
    r"食谱|菜谱|书|文件|条款|制度"
)


# Decline limits per answer mode. "concise" (a copied span) was fitted on CMRC concise answers;
# "sentences" (the default of `polymodal ask`) was chosen on the blind dev sets (eval/rag/README.md).
MODE_LIMITS: dict[str, dict[str, float]] = {
    "concise": {"min_coverage": 0.28, "max_not_found": 0.01},
    "sentences": {"min_coverage": 0.10, "max_not_found": 0.10, "max_source_not_found": 0.05},
}


class RagAnswerTool(Tool):
    name = "rag_answer"
    description = (
        "Answer a question from the user's knowledge base (the documents they ingested), citing the "
        "passages used as [1], [2]; says so when the answer is not in the knowledge base."
    )
    examples = (
        "What does the report say about edge AI latency?",
        "According to my documents, what is speculative decoding?",
        "根据知识库，大模型训练需要多少数据？",
        "知识库里关于多模态模型是怎么说的？",
        "summarize what my notes say about quantization",
        "What is vector quantization?",
        "Explain how edge AI reduces latency.",
        "Summarize the key points about large language models in the knowledge base.",
        "What does the article say about multimodal models?",
        "How do diffusion models work?",
        "什么是生成式人工智能？",
        "知识库里关于边缘计算的要点有哪些？",
        "大模型有哪些应用？",
        "解释一下多模态学习。",
        "为什么边缘AI能保护隐私？",
    )
    cues = Cues(
        patterns=(
            re.compile(
                r"\b(knowledge base|knowledgebase|the documents?|our docs|the docs|my notes|the articles?|"
                r"according to|in the (kb|corpus)|from the (kb|corpus|documents))\b",
                re.I,
            ),
            re.compile(
                r"\b(summari[sz]e|summary of|key points|main points|overview of|explain|tell me about|compare|"
                r"difference between|pros and cons|draw (a )?conclusions?|"
                r"what does the (document|article|paper) say)\b",
                re.I,
            ),
            # what a document the user keeps says: "what does my wildlife guide say", "per our HR policy"
            re.compile(
                rf"\b(my|our|the|in|from|per)\s+(\w+\s+){{0,3}}?({_DOCUMENT_NOUNS})\b"
                r"(?=[^.?!;]*\b(say|says|said|mention|mentions|list|lists|state|states|recommend|\?|what|which|how|"
                r"who|when|where|why|whether)\b|[^.?!;]*\?)|\b(according to|per|as per)\s+(my|our|the)\b",
                re.I,
            ),
            re.compile(r"(知识库|文档|资料|文章|笔记|总结|要点|概述|归纳|概括|解释|介绍一下|介绍下|讲讲|说说)"),
            re.compile(
                rf"({_ZH_DOCUMENT_NOUNS})(里|中|上|里面|当中)?[^，。？！；]{{0,12}}?(说|写|记|提到|讲|列|规定|推荐|建议)"
            ),
        ),
        questions=True,
    )
    plan_examples = (
        PlanExample("What is federated learning?", (("rag_answer", {"main": "What is federated learning?"}),)),
    )
    max_concurrency = 2

    def __init__(
        self,
        kb: str | Path | None = None,
        *,
        config: Any = None,
        llm: Any = None,
        index: Any = None,
        models: Any = None,
        mode: str = "hybrid",
        reranker: str = "none",
        rerank_pool: int = 8,
        evidence_tokens: int = 420,
        min_coverage: float | None = None,
        max_not_found: float | None = None,
        min_grounding: float = 0.12,
        extractive: bool = True,
        late_checks: bool = True,
        max_source_not_found: float | None = None,
        min_answer_type: float | None = None,
        answer_score: Mapping[str, float] | None = ANSWER_SCORE,
        min_answer_score: float | None = MIN_ANSWER_SCORE,
        max_tokens: int | None = None,
        strict: bool = True,
    ) -> None:
        """
        kb: knowledge-base folder (default: the config's [kb] path). llm / index: ready objects
        (tests, the app) instead of the configured ones. models: the agent's model manager, whose
        one LLM is shared with the planner (asked on every use, so it can be evicted and reloaded).
        reranker: "none", "llm" (yes/no logits) or "cross-encoder:PATH" (a local
        sentence-transformers CrossEncoder). evidence_tokens: the evidence budget (prefill time is
        the bound). min_coverage: the no-answer gate, the share of the question's character bigrams
        found in the best passage; None: the answer mode's default (`MODE_LIMITS`), which declines
        only clearly off-topic retrieval for sentence answers. max_not_found: decline when the
        model's probability of starting its reply with NOT_FOUND reaches this, even if another token
        wins (0: only when NOT_FOUND wins; needs a backend with `first_token_probability`; None: the
        mode's default). Sentence answers (the default mode) also get the re-ask over their source sentence, declined at
        `MODE_LIMITS["sentences"]["max_source_not_found"]`. On a backend without logits, what
        decides a decline is the coverage gate, a NOT_FOUND reply, the citation check and
        grounding (`RagAnswer.checks` lists the checks that ran). strict: an answer with no verifiable
        citation counts as not found. min_grounding: decline an answer whose source sentence (with
        the one before it) holds less than this share of the question's content features: the
        answer then comes from text about something else (tools.rag_prompt.grounding; 0: off).
        extractive: concise answers are decoded as verbatim copies of a span of the passages where
        the backend offers `stream_copy` (tools.llm.copy_constraint): the model cannot paraphrase or
        mix passages (`RagAnswer.quote` then gives the copied span's offsets).
        late_checks: for a concise answer that passed the checks above, ask two more short
        questions where the backend offers the logits probes, and record their answers: the re-ask,
        P(NOT_FOUND) when the model is shown only the answer's source sentence and the one before
        it, and the answer-type question, P(yes) that the answer is the kind of thing the question
        asks for (llama.cpp's cached prompt prefix is kept). max_source_not_found /
        min_answer_type: optional limits of their own on those two (None: none).
        answer_score / min_answer_score: the decision over all the signals together: decline a
        concise answer whose tools.answer_score is below min_answer_score (None: the score is
        recorded only; answer_score None: no score).
        How each default was chosen, and what it measured: eval/rag/README.md.
        """
        super().__init__()
        if config is None:
            from polymodal.config import Config

            config = Config()
        self.config = config
        self.kb_path = Path(kb).expanduser() if kb else config.kb_path()
        self._llm = llm
        self._models = models
        if index is not None:
            self.index = index  # a ready index (tests, the app) instead of opening kb_path
        self.mode = mode
        self.reranker = reranker
        self.rerank_pool = rerank_pool
        self.evidence_tokens = evidence_tokens
        self.limits = {
            mode: {
                **limits,
                **{
                    k: v for k, v in (("min_coverage", min_coverage), ("max_not_found", max_not_found)) if v is not None
                },
            }
            for mode, limits in MODE_LIMITS.items()
        }
        self.min_grounding = min_grounding
        self.extractive = extractive
        self.late_checks = late_checks
        self.max_source_not_found = max_source_not_found
        self.min_answer_type = min_answer_type
        self.answer_score = check_weights(answer_score) if answer_score is not None else None
        self.min_answer_score = min_answer_score
        self.max_tokens = max_tokens or config.llm.max_tokens
        self.strict = strict
        self._cross_encoder = None

    # -- resources -----------------------------------------------------------------------------
    @property
    def llm(self) -> Any:
        if self._llm is None and self._models is not None:
            return self._models.llm()
        if self._llm is None:
            from tools.llm.registry import get_chat_model

            self._llm = get_chat_model(self.config.llm, self.config.paths.cache())
        return self._llm

    def _llm_and_capabilities(self) -> tuple[Any, Capabilities]:
        """The chat model, and what it offers beyond generating text (logits probes, extractive
        decoding, ...), looked up once here; what it lacks, the answer does without."""
        llm = self.llm
        return llm, Capabilities.of(llm)

    @load_once
    def index(self) -> Any:
        """The knowledge base, opened read-only on first use (or the one passed in)."""
        from indexes.distributed.shards import ShardedTextIndex, is_sharded
        from indexes.text import TextIndex

        if is_sharded(self.kb_path):  # the same search over every shard (in this process)
            return ShardedTextIndex.open(self.kb_path, read_only=True, embedder_backend=self.config.embedder.backend)
        if not (self.kb_path / "manifest.json").exists():
            raise ToolError(
                f"no knowledge base at {self.kb_path}: add documents with 'polymodal ingest PATH --kb {self.kb_path}'"
            )
        return TextIndex.open(self.kb_path, read_only=True, embedder_backend=self.config.embedder.backend)

    def setup(self) -> None:
        """Open the index. The LLM loads on the first answer; llama.cpp then keeps the KV cache of
        the fixed system prompt, so later questions in the same language and mode skip its prefill."""
        _ = self.index

    @classmethod
    def from_config(cls, config: Any, models: Any = None) -> "RagAnswerTool":
        return cls(config=config, models=models)

    def followup_args(self, args: dict[str, Any], subject: str) -> dict[str, Any] | None:
        return None  # "and X?" after a question needs the planner, with the conversation

    def warm_up(self) -> None:
        """Prefill the Chinese and English answer prompts, so the first question skips them."""
        for language in ("zh", "en"):
            self.warm_prefix(language, concise=False)

    def warm_prefix(self, language: str = "en", concise: bool = False) -> None:
        """Prefill one system prompt ahead of the first question (a long-lived app can call this)."""
        _, capabilities = self._llm_and_capabilities()
        if capabilities.warm is not None:
            capabilities.warm(PromptParts(language, concise).prefix())

    # -- the tool ------------------------------------------------------------------------------
    def run(self, question: str, k: int = 4, concise: bool = False, *, context: ToolContext | None = None) -> RagAnswer:
        """Answer from the knowledge base with numbered citations.

        Args:
            question: the question, in any language (the answer uses the same language)
            k: how many passages to use as evidence
            concise: a short factoid answer (still cited) instead of sentences
        """
        result = None
        for event in self.stream(question, k=k, concise=concise, context=context):
            if isinstance(event, RagAnswer):
                result = event
        assert result is not None
        return result

    def stream(
        self, question: str, k: int = 4, concise: bool = False, *, context: ToolContext | None = None
    ) -> Iterator[str | RagAnswer]:
        """Yield answer text pieces as they are generated, then the final `RagAnswer`."""
        question = " ".join((question or "").split())
        if not question:
            raise InputError("rag_answer needs a question")
        if not 1 <= k <= 20:
            raise InputError("k must be between 1 and 20")
        ctx = context or ToolContext()
        lang = language_of(question)
        t = RagTimings()
        t0 = time.perf_counter()
        hits = self.index.search(question, k=max(k, self.rerank_pool) if self.reranker != "none" else k, mode=self.mode)
        t.retrieve = time.perf_counter() - t0
        ctx.check_cancelled()
        if self.reranker != "none" and hits:
            t0 = time.perf_counter()
            hits = self._rerank(question, hits)
            t.rerank = time.perf_counter() - t0
        hits = hits[:k]
        base = RagAnswer(
            question=question,
            answer=not_found_text(lang),
            found=False,
            timings=t,
            model=self._llm.name if self._llm else self.config.llm.model,
            kb=str(self.kb_path),
            language=lang,
        )
        if not hits:
            base.reason = "no passages"
            yield base
            return
        limits = self.limits["concise" if concise else "sentences"]
        best = base.coverage = max(coverage(question, h.text) for h in hits)
        if best < limits["min_coverage"]:
            base.reason = f"off-topic retrieval (coverage {best:.2f} < {limits['min_coverage']:.2f})"
            base.passages = [citation(i, h, h.start, h.end, h.text) for i, h in enumerate(hits, 1)]
            yield base
            return
        t0 = time.perf_counter()
        llm, capabilities = self._llm_and_capabilities()
        parts = PromptParts(lang, concise)
        windows = fit_evidence(question, hits, self.evidence_tokens, capabilities.count_tokens)
        passages = [citation(i, h, a, b, txt) for i, (h, a, b, txt) in enumerate(windows, 1)]
        messages = build_messages(parts, [(p.source, p.text) for p in passages], question)
        t.prompt = time.perf_counter() - t0
        base.model = llm.name
        base.passages = passages
        yield from self._generate(llm, capabilities, messages, base, concise, ctx)

    def _generate(
        self,
        llm: Any,
        capabilities: Capabilities,
        messages: list[dict],
        base: RagAnswer,
        concise: bool,
        ctx: ToolContext,
    ) -> Iterator[str | RagAnswer]:
        t = base.timings
        # what the model saw (instruction-like sentences redacted): copied from, checked against
        shown = {p.number: shown_text(p.text) for p in base.passages}
        flt = CitationStreamFilter(range(1, len(base.passages) + 1))
        raw, held, released = "", "", False
        t0 = time.perf_counter()
        t_first = None
        probed = None
        probe, last_stats = capabilities.first_token_probability, capabilities.last_stats
        limits = self.limits["concise" if concise else "sentences"]
        max_not_found = limits["max_not_found"]
        base.checks = ["coverage", "model reply", "citations", "grounding"]
        if max_not_found > 0 and probe is not None:
            base.checks.append("P(NOT_FOUND)")
            # the prefill happens here; the stream below finds the prompt in the KV cache
            p = base.not_found_probability = probe(messages, [NOT_FOUND])
            probed = last_stats() if last_stats is not None else None
            if p >= max_not_found:
                t.prefill = time.perf_counter() - t0
                base.reason = f"model: not in evidence (P(NOT_FOUND) {p:.2f} >= {max_not_found:.2f})"
                yield base
                return
        if concise and self.extractive and capabilities.stream_copy is not None:
            pieces = capabilities.stream_copy(messages, list(shown.values()), anchored=[NOT_FOUND], max_tokens=64)
        else:
            pieces = llm.stream(messages, max_tokens=64 if concise else self.max_tokens, temperature=0.0)
        for piece in pieces:
            t_first = t_first or time.perf_counter()
            raw += piece
            ctx.check_cancelled()
            if not released:  # hold back until the text cannot be the NOT_FOUND sentinel
                held += piece
                if sentinel_prefix(held):
                    continue
                released, piece = True, held
            yield from flt.feed(piece)
        if released:
            yield from flt.flush()
        t_end = time.perf_counter()
        stats = last_stats() if last_stats is not None else None
        t.prefill = (t_first or t_end) - t0
        t.decode = t_end - (t_first or t_end)
        if stats is not None:
            t.prompt_tokens, t.completion_tokens = stats.prompt_tokens, stats.completion_tokens
            t.cached_prompt_tokens = stats.cached_prompt_tokens
            if probed is not None:  # the probe prefilled the prompt: count what it found cached
                t.cached_prompt_tokens = min(t.cached_prompt_tokens, probed.cached_prompt_tokens)
        result = self._finish(base, raw, shown)
        if result.found and concise and self.late_checks:
            late_checks(self, capabilities, result, shown)
        elif (
            result.found and not concise and self.late_checks and probe is not None and "max_source_not_found" in limits
        ):
            result.checks.append("re-ask over the source sentence")
            p = recheck(probe, result, shown, new_only=True)
            if p is not None and p >= limits["max_source_not_found"]:
                retract(
                    result,
                    f"model: not in the answer's source sentence (P(NOT_FOUND) {p:.2f} >= "
                    f"{limits['max_source_not_found']:.2f})",
                )
        yield result

    def _finish(self, base: RagAnswer, raw: str, shown: dict[int, str]) -> RagAnswer:
        text = raw.strip()
        if not text or NOT_FOUND in text or declines(text, base.language):
            base.reason, base.draft = "model: not in evidence", text
            return base
        by_number = {p.number: p for p in base.passages}
        checked = check_citations(text, shown)
        base.removed_citations = checked.removed
        if self.strict and not checked.cited:
            base.reason, base.draft = "no verifiable citation", text
            base.unsupported_sentences = checked.unsupported_sentences
            return base
        g = base.grounding = grounding(base.question, checked.text, list(shown.values()))
        if g < self.min_grounding:
            base.draft = text
            base.reason = f"answer not grounded (question coverage at its source {g:.2f} < {self.min_grounding:.2f})"
            return base
        base.found = True
        base.answer = checked.text
        base.citations = [by_number[n] for n in checked.cited]
        base.unsupported_sentences = checked.unsupported_sentences
        base.quote = quote(strip_citations(checked.text).strip(), base.citations + base.passages)
        return base

    # -- reranking -----------------------------------------------------------------------------
    def _rerank(self, question: str, hits: list[Any]) -> list[Any]:
        if self.reranker == "llm":
            llm, capabilities = self._llm_and_capabilities()
            prompt = (
                "Passage:\n{p}\n\nQuestion: {q}\nDoes the passage contain the answer to the question? Answer yes or no."
            )
            scores = [
                yes_probability(
                    llm, [{"role": "user", "content": prompt.format(p=h.text[:800], q=question)}], capabilities
                )
                for h in hits
            ]
        elif self.reranker.startswith("cross-encoder:"):
            scores = list(self._cross(self.reranker.split(":", 1)[1]).predict([(question, h.text) for h in hits]))
        else:
            raise InputError(f"unknown reranker '{self.reranker}' (none, llm or cross-encoder:PATH)")
        order = sorted(range(len(hits)), key=lambda i: -float(scores[i]))
        return [hits[i] for i in order]

    def _cross(self, path: str) -> Any:
        if self._cross_encoder is None:
            from polymodal.errors import require

            st = require("sentence_transformers", "models", "the cross-encoder reranker")
            self._cross_encoder = st.CrossEncoder(path, device="cpu")
        return self._cross_encoder
