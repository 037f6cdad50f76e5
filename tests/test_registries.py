"""Registries carry their metadata, parameter choices come from them, and a trained model has
one key: the hash of its weights."""

import copy

import pytest
import torch
from pydantic import BaseModel, ConfigDict

from xaistudy.core.params import ParamError, build_params, choices_field
from xaistudy.data import registry
from xaistudy.data.datasets import dataset_names, get_spec
from xaistudy.evaluate import faithfulness, localisation, occlusion, wsss
from xaistudy.models.classifiers import build_classifier
from xaistudy.models.train import TrainResult, weights_hash

NAMES = ("gradcam", "gradcam++", "lime")


class Choices(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    methods: str = choices_field(NAMES, "all", "methods")
    strategies: str = choices_field(("mean", "nli"), "mean", "strategies")
    rule: str = choices_field(("otsu", "mean"), "otsu", "rule", many=False)


def test_choices_accept_all_or_a_comma_list_of_registered_names():
    assert Choices().methods == "all"
    assert Choices(methods="gradcam++, lime").methods == "gradcam++,lime"
    assert Choices(rule="mean").rule == "mean"
    assert "gradcam, gradcam++, lime" in Choices.model_fields["methods"].description


@pytest.mark.parametrize(
    "values, message",
    [
        ({"methods": "gradcm"}, "unknown method 'gradcm' in methods; allowed: all, gradcam, "),
        ({"methods": "lime,gradcam+"}, "unknown method 'gradcam+' in methods"),
        ({"methods": "all,lime"}, "unknown method 'all' in methods"),
        ({"methods": ""}, "unknown method '' in methods"),
        ({"methods": "lime,lime"}, "methods lists a method twice"),
        ({"strategies": "blurr"}, "unknown strategy 'blurr' in strategies; allowed: all, mean"),
        ({"rule": "all"}, "unknown rule 'all' in rule; allowed: otsu, mean"),
        ({"rule": "otsu,mean"}, "unknown rule 'otsu,mean' in rule"),
    ],
)
def test_a_bad_choice_names_the_bad_item(values, message):
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        Choices(**values)


def test_chapter_choices_come_from_the_registries():
    from xaistudy.chapters.ibo import IboParams
    from xaistudy.chapters.saliency_tour import SaliencyTourParams
    from xaistudy.explain import METHODS
    from xaistudy.explain import taxonomy as tx

    with pytest.raises(ParamError, match=r"unknown strategy 'blurr' in strategies; allowed: all, "):
        build_params(IboParams, "smoke", {"strategies": "blurring,blurr"})
    for name in occlusion.STRATEGIES:
        assert build_params(IboParams, "smoke", {"strategies": name}).strategies == name
    with pytest.raises(ParamError, match="unknown method 'gradcm' in methods") as err:
        build_params(SaliencyTourParams, "smoke", {"methods": "gradcm"})
    assert "\n" not in str(err.value) and str(err.value).count("allowed:") == 1
    assert all(m == "cam" or m in METHODS for m in tx.TOUR_METHODS)
    with pytest.raises(ParamError, match="unknown rule 'kmean' in iou_rule"):
        build_params(IboParams, "smoke", {"iou_rule": "kmean"})
    for rule in faithfulness.BINARISE_RULES:
        assert build_params(IboParams, "smoke", {"iou_rule": rule}).iou_rule == rule
    assert set(wsss.BINARISE_RULES) and set(localisation.BINARISE_RULES)


def test_strategy_registry_carries_labels_and_randomness():
    assert list(occlusion.STRATEGIES) == list(occlusion.STRATEGY_INFO)
    assert occlusion.STRATEGIES["nli"] == "Noisy Linear Imputation"
    random = {n for n, s in occlusion.STRATEGY_INFO.items() if s.stochastic}
    assert random == {"histogram", "nli", "ibo"}
    images, mask = torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 8, 8)
    mask[..., :4, :] = 1
    for name, info in occlusion.STRATEGY_INFO.items():
        if name in ("ibo", "mean"):
            continue
        a = occlusion.occlude(name, images, mask, seeds=[1])
        b = occlusion.occlude(name, images, mask, seeds=[2])
        assert torch.equal(a[..., 4:, :], images[..., 4:, :])  # kept pixels untouched
        assert torch.equal(a, b) != info.stochastic, name  # only random ones follow the seed


def test_faithfulness_binarise_refuses_an_unknown_rule():
    with pytest.raises(ValueError, match="allowed: threshold, kmeans, otsu"):
        faithfulness.binarise(torch.rand(4, 4).numpy(), "kmean")


def test_dataset_registry_imports_loaders_only_when_asked():
    assert {"camelyon16", "pannuke", "coco", "pcle-folder", "synthetic-he-pen"} <= set(
        dataset_names()
    )
    assert get_spec("pannuke") is registry.DATASETS["pannuke"]
    with pytest.raises(ValueError, match="unknown dataset 'pannuk'; allowed: camelyon16, coco"):
        get_spec("pannuk")


def test_weights_hash_follows_the_weights_only():
    torch.manual_seed(0)
    model = build_classifier("small_cnn", num_classes=2)
    key = weights_hash(model)
    assert len(key) == 16 and key == weights_hash(copy.deepcopy(model))
    torch.manual_seed(0)
    assert weights_hash(build_classifier("small_cnn", num_classes=2)) == key  # same seed
    changed = copy.deepcopy(model)
    with torch.no_grad():
        next(changed.parameters()).view(-1)[0] += 1e-6
    assert weights_hash(changed) != key
    as_double = copy.deepcopy(model).to(torch.float64)  # same values, another dtype
    assert weights_hash(as_double) != key
    result = TrainResult(model, history=None, best_epoch=1, stopped_early=False)
    assert result.weights_hash == key
    from xaistudy.models.classify import weights_key

    assert weights_key is weights_hash  # one key for a trained model
