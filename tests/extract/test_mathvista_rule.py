"""The mathvista@1 rule on its own (the task tests exercise it through the plugin)."""

from harness.extract.base import ExtractContext, get_rule


def test_mathvista_rule_types() -> None:
    rule = get_rule("mathvista")
    mc = ExtractContext(doc={"question_type": "multi_choice", "answer_type": "text", "choices": ["1", "2"]})
    assert rule("2", mc) == "2" and rule("(B)", mc) is None and rule("  ", mc) == ""
    integer = ExtractContext(doc={"question_type": "free_form", "answer_type": "integer"})
    assert rule("12", integer) == "12" and rule("12 apples", integer) is None
    lst = ExtractContext(doc={"question_type": "free_form", "answer_type": "list"})
    assert rule("[1, 2]", lst) is None  # lists always go to the extractor
    assert rule.id == "mathvista@1"
