"""Reference fixtures for NNTests, made with PyTorch.

Versions used for the committed files:
  torch 2.15.0+cu132 (run on CPU), torchvision 0.29.2, timm 1.0.31, safetensors 0.8.0, numpy 2.4.6
(also stored in each .io.safetensors file's metadata and in keys.json)
Run from this folder:  python3 make_fixtures.py
Seeds are fixed; rerunning with the same versions reproduces the tensors bit for bit (the
order of metadata entries in the headers may differ).

For each model <name>:
  <name>.weights.safetensors  the model's state_dict() exactly as PyTorch saves it
                              (safetensors.torch.save_file; BN num_batches_tracked as I64)
  <name>.io.safetensors       input, output (eval mode), direction, output_train (train mode)
                              and gradients of loss = sum(output_train * direction) with
                              respect to the input (grad.input) and every parameter (grad.<key>)
keys.json: full-size state_dict keys and shapes of torchvision resnet18/resnet34, timm
resnet18/resnet34 and BENCH.md's cnn/unet/lstm, for name compatibility without 45 MB files.
Sizes are reduced to keep the folder small (see the README of each model below); the
topology and the parameter names are those of the full models.
"""
import json, os, struct, sys
import numpy as np
import torch
import torchvision
from torch import nn
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "shared", "spec"))
sys.path.insert(0, "/work/shared/spec")
import reference_models as ref  # noqa: E402

torch.manual_seed(0)
import safetensors  # noqa: E402
VERSIONS = {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "safetensors": safetensors.__version__, "numpy": np.__version__}
try:
    import timm
    VERSIONS["timm"] = timm.__version__
except ImportError:
    timm = None


def randomise_batchnorm(model):
    """Non-trivial BN parameters and running statistics, so eval mode tests them."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.num_batches_tracked.fill_(7)


def save(name, model, x, gradients=True):
    randomise_batchnorm(model)
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    save_file(sd, f"{name}.weights.safetensors")
    io = {"input": x.clone()}
    model.eval()
    with torch.no_grad():
        io["output"] = model(x).clone()
    if gradients:
        model.train()
        xi = x.clone().requires_grad_(True)
        out = model(xi)
        direction = torch.randn(out.shape, generator=torch.Generator().manual_seed(2))
        (out * direction).sum().backward()
        io["direction"] = direction
        io["output_train"] = out.detach().clone()
        io["grad.input"] = xi.grad.clone()
        for k, p in model.named_parameters():
            io["grad." + k] = p.grad.clone()
    save_file({k: v.contiguous() for k, v in io.items()}, f"{name}.io.safetensors",
              metadata={k: str(v) for k, v in VERSIONS.items()})
    model.load_state_dict(sd)  # undo the running-statistics update of the train pass


class CompactTorchvisionResNet(torchvision.models.ResNet):
    """torchvision's ResNet class and BasicBlock, with stage widths divided by 8.

    torchvision's BasicBlock cannot be narrowed through width_per_group, so _make_layer maps
    its planes (64..512) to `widths`; stem and fc are replaced accordingly. Module names are
    torchvision's own.
    """

    def __init__(self, layers, widths, num_classes, in_channels=3):
        self._widths = widths
        super().__init__(torchvision.models.resnet.BasicBlock, layers, num_classes=num_classes)
        self.conv1 = nn.Conv2d(in_channels, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.fc = nn.Linear(widths[3], num_classes)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        stage = [64, 128, 256, 512].index(planes)
        if stage == 0:
            self.inplanes = self._widths[0]
        return super()._make_layer(block, self._widths[stage], blocks, stride, dilate)


def write_fits(path, image):
    """A minimal float32 FITS primary image (BITPIX -32), no astropy needed."""
    cards = ["SIMPLE  =                    T", "BITPIX  =                  -32", f"NAXIS   = {image.ndim:20d}"]
    for i, n in enumerate(reversed(image.shape)):
        cards.append(f"NAXIS{i + 1:<3d}= {n:20d}")
    cards.append("END")
    header = "".join(c.ljust(80) for c in cards).encode("ascii")
    header += b" " * (-len(header) % 2880)
    data = image.astype(">f4").tobytes()
    data += b"\0" * (-len(data) % 2880)
    with open(path, "wb") as f:
        f.write(header + data)


def main():
    g = torch.Generator().manual_seed(3)
    # cnn: BENCH.md's layers at 1 x 16 x 16 (flatten 128*2*2) instead of 64 x 64 (flatten 8192).
    cnn = ref.cnn()
    cnn[10] = nn.Linear(128 * 2 * 2, 256)
    save("cnn", cnn, torch.randn(2, 1, 16, 16, generator=g))

    # resnet18: torchvision topology and names, widths 8/16/32/64, 3 x 64 x 64 input.
    tv = CompactTorchvisionResNet([2, 2, 2, 2], [8, 16, 32, 64], num_classes=5)
    save("resnet18_torchvision", tv, torch.randn(2, 3, 64, 64, generator=g))

    # timm resnet18 with channels 8/16/32/64 (timm's own `channels` option), eval logits only.
    # timm's plain stem is always 64 wide (stem_width only affects deep stems), so the stem is
    # narrowed to 8 by hand (with layer1.0.conv1's input) and layer1.0's then-unneeded
    # projection removed: timm's modules
    # and names otherwise.
    if timm is not None:
        tm = timm.create_model("resnet18", pretrained=False, num_classes=5, channels=(8, 16, 32, 64))
        tm.conv1 = nn.Conv2d(3, 8, 7, stride=2, padding=3, bias=False)
        tm.bn1 = nn.BatchNorm2d(8)
        tm.layer1[0].conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        tm.layer1[0].downsample = None
        save("resnet18_timm", tm, torch.randn(2, 3, 64, 64, generator=g), gradients=False)

    # unet: reference_models.UNet with widths 4/8/16/32, bottleneck 64, 1 x 32 x 32 input.
    un = ref.UNet(in_channels=1, classes=3, widths=(4, 8, 16, 32), bottleneck=64)
    save("unet", un, torch.randn(2, 1, 32, 32, generator=g))

    # lstm: BENCH.md's light-curve model exactly (hidden 64), sequences of 16 steps.
    save("lstm", ref.LightCurveLSTM(), torch.randn(2, 16, 2, generator=g))

    # Full-size names and shapes (no weights).
    keys = {}
    def record(name, model):
        keys[name] = {k: list(v.shape) for k, v in model.state_dict().items()}
    record("torchvision_resnet18", torchvision.models.resnet18(num_classes=5))
    record("torchvision_resnet34", torchvision.models.resnet34(num_classes=5))
    if timm is not None:
        record("timm_resnet18", timm.create_model("resnet18", pretrained=False, num_classes=5))
        record("timm_resnet34", timm.create_model("resnet34", pretrained=False, num_classes=5))
    record("bench_cnn", ref.cnn())
    record("bench_unet", ref.UNet())
    record("bench_lstm", ref.LightCurveLSTM())
    with open("keys.json", "w") as f:
        json.dump({"versions": VERSIONS, "models": keys}, f, indent=0, sort_keys=True)

    # Two FITS cutouts and the cnn's logits on them, for `astrolabe predict --raw`.
    cnn.eval()
    images = torch.randn(2, 1, 16, 16, generator=g)
    for i in range(2):
        write_fits(f"cutout_{i}.fits", images[i, 0].numpy())
    with torch.no_grad():
        logits = cnn(images)
    # Two 3-band cubes [3, 32, 32] and the compact torchvision ResNet-18's logits on them
    # (predict reads the widths from the weights' shapes).
    tv.eval()
    cubes = torch.randn(2, 3, 32, 32, generator=g)
    for i in range(2):
        write_fits(f"cube_{i}.fits", cubes[i].numpy())
    with torch.no_grad():
        resnet_logits = tv(cubes)
    save_file({"logits": logits.contiguous(), "resnet_logits": resnet_logits.contiguous()}, "predict_expected.safetensors")


if __name__ == "__main__":
    main()
