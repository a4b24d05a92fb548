"""Video backbones: I3D ResNet-50 against the reference's recorded numbers, weights files, torchvision's models."""
import hashlib
import urllib.error

import pytest
import torch
import torchvision
from torch.testing import assert_close

from utils.errors import InputError
from video.backbones import (BACKBONES, I3DResNet50, batchnorm_estimation, build_backbone, load_i3d_weights,
                             standin_i3d_state_dict)

PARITY_TOL = dict(rtol=1e-4, atol=1e-3)  # the parity README's tolerance (features reach ~400)
SMALL_CLIP = (1, 3, 16, 32, 32)  # the smallest input I3D takes whole: layer4 at (1, 2048, 2, 1, 1)
TORCHVISION_SIZES = {"r3d_18": 512, "mc3_18": 512, "r2plus1d_18": 512, "s3d": 1024, "mvit_v1_b": 768,
                     "mvit_v2_s": 768, "swin3d_t": 768, "swin3d_s": 768, "swin3d_b": 1024}  # docs/video.md
# the smallest (H = W) each model accepts for 16 frames: s3d's head pools a 7×7 map, mvit's position
# embeddings are fixed at 224×224
SIDE = {"s3d": 224, "mvit_v1_b": 224, "mvit_v2_s": 224}


def sha16(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


@pytest.fixture(scope="module")
def parity(parity_dir):
    return torch.load(parity_dir / "i3d_r50_parity.pt", weights_only=True)


@pytest.fixture(scope="module")
def parity_weights(parity, tmp_path_factory):
    """standin_i3d_state_dict(), checked against the file's layout and weight_checks, saved as a weights file."""
    rng_before = torch.get_rng_state()
    state = standin_i3d_state_dict()
    assert torch.equal(torch.get_rng_state(), rng_before)  # the global RNG is left alone
    assert list(state) == parity["keys"] and [list(v.shape) for v in state.values()] == parity["shapes"]
    assert [str(v.dtype).removeprefix("torch.") for v in state.values()] == parity["dtypes"]
    assert set(parity["weight_checks"]) == set(state)
    for key, check in parity["weight_checks"].items():
        v = state[key].double().flatten()
        first4 = torch.zeros(4, dtype=torch.float64)
        first4[:min(4, v.numel())] = v[:4]
        assert_close(torch.cat([v.sum()[None], (v * v).sum()[None], first4]), check, rtol=1e-6, atol=1e-6)
    path = tmp_path_factory.mktemp("i3d") / "i3d_r50_stand_in.pth"
    torch.save(state, path)
    return path


def test_i3d_state_dict_is_the_references(parity):
    model = I3DResNet50()
    state = model.state_dict()
    assert list(state) == parity["keys"]
    assert [list(v.shape) for v in state.values()] == parity["shapes"]
    assert [str(v.dtype).removeprefix("torch.") for v in state.values()] == parity["dtypes"]
    assert sum(p.numel() for p in model.parameters()) == 28_043_472


def test_i3d_features_and_logits_match_reference(parity, parity_weights):
    model = I3DResNet50().eval()
    load_i3d_weights(model, parity_weights)
    with torch.inference_mode():
        features = model(parity["input"])
        logits = model.logits(features)
    assert features.shape == (2, 2048)
    assert torch.allclose(features, parity["features"], **PARITY_TOL)
    assert torch.allclose(logits, parity["logits"], **PARITY_TOL)


def test_built_i3d_is_channels_last_and_matches_reference(parity, parity_weights):
    backbone = build_backbone("i3d_r50", str(parity_weights))
    assert (backbone.feature_size, backbone.frames, backbone.preprocessing) == (2048, 16, None)
    assert backbone.channels_last and backbone.net.conv1.weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert not backbone.net.training
    assert backbone.weights_id == sha16(parity_weights)
    with torch.inference_mode():
        features = backbone.net(parity["input"].contiguous(memory_format=torch.channels_last_3d))
    assert torch.allclose(features, parity["features"], **PARITY_TOL)


@pytest.fixture(scope="module")
def random_i3d():
    """An I3D with random weights and BatchNorm statistics (so that loading them shows in the features)."""
    torch.manual_seed(0)
    model = I3DResNet50().eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(1, 1.5)
    return model


def features(model: torch.nn.Module) -> torch.Tensor:
    with torch.inference_mode():
        return model(torch.randn(SMALL_CLIP, generator=torch.Generator().manual_seed(3)))


@pytest.mark.parametrize("variant", ["no_num_batches_tracked", "no_fc", "nested"])
def test_i3d_file_variants_load(random_i3d, tmp_path, variant):
    state = random_i3d.state_dict()
    if variant == "no_num_batches_tracked":
        saved = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
        assert len(saved) == 267  # as the published i3d_r50_kinetics.pth
    elif variant == "no_fc":
        saved = {k: v for k, v in state.items() if not k.startswith("fc.")}
    else:
        saved = {"state_dict": state, "epoch": 3}
    torch.save(saved, tmp_path / "w.pth")
    torch.manual_seed(1)
    fresh = I3DResNet50().eval()
    assert not torch.allclose(features(fresh), features(random_i3d))
    load_i3d_weights(fresh, tmp_path / "w.pth")
    assert_close(features(fresh), features(random_i3d), rtol=1e-5, atol=1e-5)


def layout_only(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same names, shapes and dtypes in zero-stride tensors: a small file, enough for layout errors."""
    return {k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in state.items()}


@pytest.mark.parametrize("change, words", [
    ("missing", ["1 missing", "layer3.4.conv2.weight"]),
    ("extra", ["1 unexpected", "layer5.0.conv1.weight"]),
    ("misshaped", ["1 mis-shaped", "layer1.0.conv1.weight is (64, 64, 1, 1, 1) not (64, 64, 3, 1, 1)"]),
])
def test_i3d_file_of_another_layout_is_one_line_naming_the_key(tmp_path, change, words):
    state = layout_only(I3DResNet50().state_dict())
    if change == "missing":
        del state["layer3.4.conv2.weight"]
    elif change == "extra":
        state["layer5.0.conv1.weight"] = torch.zeros(())
    else:
        state["layer1.0.conv1.weight"] = torch.zeros(()).expand(64, 64, 1, 1, 1)
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(InputError) as error:
        load_i3d_weights(I3DResNet50(), tmp_path / "w.pth")
    message = str(error.value)
    assert "\n" not in message and str(tmp_path / "w.pth") in message
    for word in words:
        assert word in message


def test_non_torch_files_are_one_line_errors(tmp_path):
    (tmp_path / "notes.pth").write_text("not weights\n")
    torch.save([torch.zeros(2)], tmp_path / "list.pth")
    for name in ["notes.pth", "list.pth", "absent.pth"]:
        with pytest.raises(InputError, match=name) as error:
            load_i3d_weights(I3DResNet50(), tmp_path / name)
        assert "\n" not in str(error.value)


def test_i3d_needs_weights():
    with pytest.raises(InputError, match="--weights.*i3d_r50_kinetics.pth"):
        build_backbone("i3d_r50", None)
    backbone = build_backbone("i3d_r50", None, random_ok=True)
    assert backbone.weights_id == "random" and tuple(features(backbone.net).shape) == (1, 2048)


def test_unknown_backbone():
    with pytest.raises(InputError, match="unknown backbone 'c3d'"):
        build_backbone("c3d", None)


def test_backbone_names_and_sizes():
    assert BACKBONES == {"i3d_r50": 2048, **TORCHVISION_SIZES}


@pytest.mark.parametrize("name", list(TORCHVISION_SIZES))
def test_torchvision_backbone_outputs_its_feature(name):
    torch.manual_seed(0)
    backbone = build_backbone(name, None, random_ok=True)
    assert (backbone.name, backbone.feature_size, backbone.frames) == (name, TORCHVISION_SIZES[name], 16)
    assert backbone.weights_id == "random" and not backbone.net.training
    side = SIDE.get(name, 32)
    with torch.inference_mode():
        out = backbone.net(torch.randn(1, 3, 16, side, side))
    assert out.shape == (1, TORCHVISION_SIZES[name])


@pytest.mark.parametrize("name, head", [("mc3_18", "fc"), ("s3d", "classifier"), ("swin3d_t", "head")])
def test_torchvision_feature_is_the_heads_input(tmp_path, name, head):
    torch.manual_seed(0)
    full = torchvision.models.get_model(name, weights=None).eval()
    captured = []
    getattr(full, head).register_forward_hook(lambda module, args, out: captured.append(args[0]))
    x = torch.randn(1, 3, 16, SIDE.get(name, 32), SIDE.get(name, 32))
    with torch.inference_mode():
        full(x)
    torch.save(full.state_dict(), tmp_path / "w.pth")  # head keys included: dropped on loading
    backbone = build_backbone(name, str(tmp_path / "w.pth"))
    with torch.inference_mode():
        out = backbone.net(x)
    assert backbone.weights_id == sha16(tmp_path / "w.pth")
    assert_close(out, captured[0].flatten(1), rtol=1e-5, atol=1e-5)  # s3d's head sees (1, 1024, 1, 1, 1) here


def test_torchvision_file_of_another_model_is_refused(tmp_path):
    torch.save(layout_only(torchvision.models.get_model("mc3_18").state_dict()), tmp_path / "mc3.pth")
    with pytest.raises(InputError, match=r"mc3\.pth: not torchvision r3d_18 weights: \d+ mis-shaped: layer2") as e:
        build_backbone("r3d_18", str(tmp_path / "mc3.pth"))
    assert "\n" not in str(e.value)


def test_torchvision_preprocessing_is_the_weights():
    assert build_backbone("r2plus1d_18", None, random_ok=True).preprocessing == {
        "resize_size": (128, 171), "crop_size": (112, 112), "mean": (0.43216, 0.394666, 0.37645),
        "std": (0.22803, 0.22145, 0.216989), "interpolation": "bilinear", "antialias": False}
    swin = build_backbone("swin3d_t", None, random_ok=True).preprocessing
    assert (swin["resize_size"], swin["mean"], swin["std"]) == ((256,), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_download_failure_is_one_line(monkeypatch):
    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", offline)
    with pytest.raises(InputError, match="download failed.*--weights FILE") as error:
        build_backbone("r3d_18", None)
    assert "\n" not in str(error.value)


def test_download_loads_the_default_weights(monkeypatch):
    torch.manual_seed(0)
    full = torchvision.models.get_model("mc3_18").eval()
    full.fc = torch.nn.Identity()
    published = {**full.state_dict(), "fc.weight": torch.zeros(400, 512), "fc.bias": torch.zeros(400)}
    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", lambda self, *a, **k: published)
    backbone = build_backbone("mc3_18", None)
    assert backbone.weights_id == "MC3_18_Weights.KINETICS400_V1"
    x = torch.randn(1, 3, 16, 32, 32)
    with torch.inference_mode():
        assert_close(backbone.net(x), full(x))


def test_batchnorm_estimation_keeps_the_average_of_batch_means_and_variances():
    """Two batches through a BatchNorm: its running mean is the average of their means, its running variance the
    average of their unbiased variances (computed by hand); weights untouched, eval mode and momentum restored."""
    net = torch.nn.Sequential(torch.nn.Conv3d(2, 2, 1, bias=False), torch.nn.BatchNorm3d(2)).eval()
    torch.nn.init.eye_(net[0].weight.view(2, 2))  # the conv passes its input through
    weight, bias = net[1].weight.detach().clone(), net[1].bias.detach().clone()
    batches = [torch.randn(3, 2, 2, 2, 2, generator=torch.Generator().manual_seed(s)) * (s + 1) + s for s in (0, 1)]
    with torch.inference_mode(), batchnorm_estimation(net):
        for x in batches:
            net(x)
    per_channel = [x.transpose(0, 1).reshape(2, -1) for x in batches]
    assert_close(net[1].running_mean, sum(c.mean(1) for c in per_channel) / 2)
    assert_close(net[1].running_var, sum(c.var(1, unbiased=True) for c in per_channel) / 2)
    assert not net[1].training and net[1].momentum == 0.1 and int(net[1].num_batches_tracked) == 2
    assert torch.equal(net[1].weight, weight) and torch.equal(net[1].bias, bias)
