"""Plans: references, validation and repair."""

from __future__ import annotations

import pytest

from orchestrator.plan import Plan, PlanStep, find_references, plan_from_json, resolve_references, validate_plan
from orchestrator.testing import fake_tools
from polymodal.errors import InputError, PlanError


@pytest.fixture
def tools():
    return {t.name: t for t in fake_tools()}


def test_whole_string_reference_keeps_type_and_embedded_one_becomes_text():
    results = {1: {"images": [{"path": "/a.jpg", "score": 0.9}], "answer": "edge AI runs on devices"}}
    assert resolve_references("$1.images[0]", results) == {"path": "/a.jpg", "score": 0.9}
    assert resolve_references({"image": "$1.images[0].path"}, results) == {"image": "/a.jpg"}
    assert resolve_references("draw: $1.answer!", results) == "draw: edge AI runs on devices!"
    assert resolve_references(["$1.images[-1].score"], results) == [0.9]


def test_reference_to_missing_field_or_step_is_a_clear_error():
    with pytest.raises(InputError, match=r"\$1.nothing"):
        resolve_references("$1.nothing", {1: {"answer": "x"}})
    with pytest.raises(InputError, match="step 2"):
        resolve_references("$2.answer", {1: {"answer": "x"}})


def test_find_references_in_nested_args():
    assert find_references({"a": ["$1.x", {"b": "see $3.y[0]"}], "c": 4}) == {1, 3}


def test_valid_plan_passes_and_references_imply_dependencies(tools):
    plan = plan_from_json(
        {
            "steps": [
                {"tool": "image_search", "args": {"query": "cat"}},
                {"tool": "generate_image", "args": {"prompt": "a painting of $1.images[0].path"}},
            ]
        }
    )
    plan, fixes = validate_plan(plan, tools)
    assert plan.step(2).depends_on == [1]
    assert plan.edges() == {(1, 2)}
    assert any("implied" in f for f in fixes)


def test_unknown_tool_close_name_is_repaired_and_far_name_rejected(tools):
    plan, fixes = validate_plan(plan_from_json([{"tool": "image-search", "args": {"query": "cat"}}]), tools)
    assert plan.tools() == ["image_search"] and fixes
    with pytest.raises(PlanError, match="unknown tool 'send_email'"):
        validate_plan(plan_from_json([{"tool": "send_email", "args": {}}]), tools)


def test_bad_args_misnamed_main_argument_is_renamed_and_wrong_type_rejected(tools):
    plan, fixes = validate_plan(plan_from_json([{"tool": "rag_answer", "args": {"query": "what is CLIP?"}}]), tools)
    assert plan.steps[0].args == {"question": "what is CLIP?"}
    with pytest.raises(PlanError, match="integer"):
        validate_plan(plan_from_json([{"tool": "rag_answer", "args": {"question": "q", "k": "many"}}]), tools)
    with pytest.raises(PlanError, match="missing required"):
        validate_plan(plan_from_json([{"tool": "generate_image", "args": {"seed": 3}}]), tools)


def test_cycles_and_dangling_references_are_rejected(tools):
    cyclic = Plan(
        [
            PlanStep(1, "rag_answer", {"question": "$2.answer"}, [2]),
            PlanStep(2, "rag_answer", {"question": "$1.answer"}, [1]),
        ]
    )
    with pytest.raises(PlanError, match="cycle"):
        validate_plan(cyclic, tools)
    dangling = Plan([PlanStep(1, "generate_image", {"prompt": "$4.answer"})])
    with pytest.raises(PlanError, match=r"no step 4"):
        validate_plan(dangling, tools)


def test_dependency_on_missing_step_is_dropped_and_duplicate_ids_renumbered(tools):
    plan = Plan([PlanStep(1, "rag_answer", {"question": "a"}, [9]), PlanStep(1, "rag_answer", {"question": "b"})])
    plan, fixes = validate_plan(plan, tools)
    assert [s.id for s in plan.steps] == [1, 2] and plan.steps[0].depends_on == []
    assert len(fixes) == 2


def test_plan_round_trips_through_dict():
    plan = Plan(
        [PlanStep(1, "rag_answer", {"question": "q"}), PlanStep(2, "generate_image", {"prompt": "$1.answer"}, [1])],
        source="llm",
        note="n",
    )
    again = Plan.from_dict(plan.to_dict())
    assert again == plan


@pytest.mark.parametrize(
    "bad", ["nope", {"steps": "x"}, {"steps": [{"args": {}}]}, {"steps": [{"tool": "t", "args": []}]}]
)
def test_malformed_plan_json_is_a_plan_error(bad):
    with pytest.raises(PlanError):
        plan_from_json(bad)


def test_flat_wire_steps_carry_arguments_beside_the_tool_and_references_as_dependencies(tools):
    plan = plan_from_json(
        {
            "steps": [
                {"tool": "rag_answer", "question": "diffusion"},
                {"tool": "generate_image", "prompt": "$1.answer", "seed": 3},
            ]
        }
    )
    assert plan.step(1).args == {"question": "diffusion"} and plan.step(1).depends_on == []
    assert plan.step(2).args == {"prompt": "$1.answer", "seed": 3} and plan.step(2).depends_on == [1]
    plan, fixes = validate_plan(plan, tools)
    assert fixes == [] and plan.edges() == {(1, 2)}
