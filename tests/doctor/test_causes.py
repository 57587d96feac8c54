"""Findings ordered into a causal chain with one headline cause."""

from stablelearn.diagnostics import Finding
from stablelearn.doctor.causes import cause_chain, symptom


def f(id_: str, severity: str = "warning", **evidence) -> Finding:
    return Finding(id_, id_.replace("_", " ").title(), severity, f"{id_} happened. More.", evidence)


def test_the_data_problem_heads_the_symptoms_it_explains():
    """The order findings arrive in does not matter; the chain follows the causes."""
    findings = [
        f("not_learning", affected="9/10"),
        f("dying_relu", affected="9/10", layers=["hidden_1"], from_epoch_min=1),
        f("exploding_gradients", "critical", affected="1/10", diverged_epoch_min=1),
        f("target_spread", target_std=153.2),
    ]
    chain = cause_chain(findings)
    assert chain.headline.id == "target_spread"
    assert [x.id for x in chain.explained] == ["exploding_gradients", "dying_relu", "not_learning"]
    assert chain.other == ()
    assert chain.sentence() == (
        "The target's spread (std 153) makes the gradients large; 1/10 models blow up (from "
        "epoch 1); 9/10 models' ReLUs die (hidden_1 from epoch 1); 9/10 models learn nothing."
    )
    assert chain.to_json()["explains"] == ["exploding_gradients", "dying_relu", "not_learning"]


def test_a_symptom_the_cause_cannot_explain_stays_independent():
    chain = cause_chain([f("saturation", affected="2/5"), f("exploding_gradients", "critical")])
    assert chain.headline.id == "exploding_gradients"
    assert chain.explained == () and [x.id for x in chain.other] == ["saturation"]


def test_symptoms_link_through_each_other():
    """Saturated units explain vanishing gradients, which explain not learning."""
    chain = cause_chain([f("not_learning"), f("vanishing_gradients"), f("saturation")])
    assert chain.headline.id == "saturation"
    assert [x.id for x in chain.explained] == ["vanishing_gradients", "not_learning"]


def test_information_alone_is_no_cause():
    chain = cause_chain([f("clipping_active", "info")])
    assert chain.headline is None and [x.id for x in chain.other] == ["clipping_active"]
    assert chain.sentence().startswith("No problem found")
    assert cause_chain([]).headline is None


def test_a_symptom_without_its_evidence_falls_back_to_its_title():
    assert symptom(f("target_spread")) == "target spread"
    assert symptom(f("some_new_detector")) == "some new detector"


def test_diverged_models_say_where_their_first_nonfinite_value_came_from():
    origin = {
        "phrase": "the gradient of layer 2 of 4",
        "direction": "backward",
        "models": 7,
        "of": 9,
    }
    exploding = f("exploding_gradients", "critical", affected="9/10", diverged_epoch_min=3,
                  nan_origin=origin)  # fmt: skip
    assert symptom(exploding) == (
        "9/10 models blow up (from epoch 3), the first NaN/Inf in the gradient of layer 2 of 4 "
        "(backward) in 7/9"
    )
