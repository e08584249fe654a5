import pytest

from w2s_ray.datasets import DATASETS
from w2s_ray.errors import UserError
from w2s_ray.models import MODELS


def test_unknown_model_suggests_the_closest_name():
    with pytest.raises(UserError, match="did you mean 'pythia-410m'"):
        MODELS.get("pythia-410")


def test_unknown_dataset_suggests_the_closest_name():
    with pytest.raises(UserError, match="did you mean 'sciq'"):
        DATASETS.get("sciqq")


def test_effective_compute_is_six_n_d():
    card = MODELS.get("pythia-1b")
    assert card.effective_compute == pytest.approx(6 * 1_011_781_632 * 300e9)


def test_offline_ladder_is_ordered_by_compute():
    computes = [MODELS.get(n).effective_compute for n in ("minilm-l3", "minilm-l6", "mpnet-base")]
    assert computes == sorted(computes) and len(set(computes)) == 3


def test_big_models_ask_for_several_gpus():
    assert MODELS.get("pythia-70m").resources.gpus == 1
    assert MODELS.get("Qwen2.5-72B").resources.gpus >= 16


def test_hub_ids_find_the_same_card_as_short_names():
    from w2s_ray.models import find_model

    assert find_model("EleutherAI/pythia-410m") == find_model("pythia-410m")
    assert find_model("Qwen/Qwen2.5-7B").params == MODELS.get("Qwen2.5-7B").params
    assert find_model("gpt2").source == "gpt2"
    with pytest.raises(UserError, match="did you mean 'pythia-410m'"):
        find_model("pythia-41m")
