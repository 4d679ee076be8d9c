"""Fixtures for the GAN pieces, from PyTorch:

- Tests/NNTests/Fixtures/spectral_norm.safetensors: torch.nn.utils.parametrizations.spectral_norm
  on a Conv2d and a Linear: the initial weight/u/v, a training-mode forward (one power
  iteration, u/v after it), the gradients of <output, g> for the weight and the input, an
  eval-mode forward, and the exact largest singular value.
- Tests/TrainingTests/Fixtures/gan_step.safetensors: one conditional adversarial step
  (discriminator update on real and generated pairs, then generator update with BCE + L1)
  with tiny convolutional networks, Adam(lr 1e-2, betas 0.5, 0.999), for the non-saturating
  and the min-max generator loss, with label smoothing 0.1 on the real pairs, and for the
  hinge loss (no smoothing).

    python scripts/make_gan_fixtures.py
"""
import pathlib
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

root = pathlib.Path(__file__).resolve().parent.parent
torch.manual_seed(7)
out = {}

def spectral_case(name, layer, x):
    sn = nn.utils.parametrizations.spectral_norm(layer)
    p = sn.parametrizations.weight
    out[f"{name}.original"] = p.original.detach().clone()
    if layer.bias is not None:
        out[f"{name}.bias"] = layer.bias.detach().clone()
    out[f"{name}.u0"] = p[0]._u.clone()
    out[f"{name}.v0"] = p[0]._v.clone()
    out[f"{name}.x"] = x
    xin = x.clone().requires_grad_(True)
    sn.train()
    y = sn(xin)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    out[f"{name}.g"] = g
    out[f"{name}.y_train"] = y.detach()
    out[f"{name}.u1"] = p[0]._u.clone()
    out[f"{name}.v1"] = p[0]._v.clone()
    out[f"{name}.grad_original"] = p.original.grad.clone()
    out[f"{name}.grad_x"] = xin.grad.clone()
    sn.eval()
    with torch.no_grad():
        out[f"{name}.y_eval"] = sn(x)
    w = p.original.detach().flatten(1)
    out[f"{name}.sigma_exact"] = torch.linalg.matrix_norm(w, ord=2).reshape(1)

spectral_case("conv", nn.Conv2d(4, 6, 3, padding=1), torch.randn(2, 4, 5, 5))
spectral_case("dense", nn.Linear(7, 5), torch.randn(3, 7))
(root / "Tests/NNTests/Fixtures").mkdir(parents=True, exist_ok=True)
save_file({k: v.contiguous() for k, v in out.items()}, str(root / "Tests/NNTests/Fixtures/spectral_norm.safetensors"))

# One conditional adversarial step.
gan = {}
x = torch.randn(4, 1, 8, 8)
y = torch.randn(4, 1, 8, 8)
gan["x"], gan["y"] = x, y
g0 = nn.Conv2d(1, 1, 3, padding=1)
d0 = nn.Conv2d(2, 1, 3, stride=2, padding=1)
for k, v in g0.state_dict().items(): gan["g0." + k] = v.clone()
for k, v in d0.state_dict().items(): gan["d0." + k] = v.clone()
for variant in ["non_saturating", "minimax", "hinge"]:
    g = nn.Conv2d(1, 1, 3, padding=1); g.load_state_dict(g0.state_dict())
    d = nn.Conv2d(2, 1, 3, stride=2, padding=1); d.load_state_dict(d0.state_dict())
    og = torch.optim.Adam(g.parameters(), lr=1e-2, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), lr=1e-2, betas=(0.5, 0.999))
    fake = g(x)
    od.zero_grad()
    real_logits = d(torch.cat([x, y], 1))
    fake_logits = d(torch.cat([x, fake.detach()], 1))
    if variant == "hinge":
        d_loss = 0.5 * (F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean())
    else:
        d_loss = 0.5 * (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, 0.9))
                        + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    d_loss.backward(); od.step()
    og.zero_grad()
    logits = d(torch.cat([x, fake], 1))
    if variant == "non_saturating":
        adv = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    elif variant == "minimax":
        adv = -F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))
    else:
        adv = -logits.mean()
    g_loss = adv + 100 * F.l1_loss(fake, y)
    g_loss.backward(); og.step()
    for k, v in g.state_dict().items(): gan[f"{variant}.g1.{k}"] = v.clone()
    for k, v in d.state_dict().items(): gan[f"{variant}.d1.{k}"] = v.clone()
    gan[f"{variant}.d_loss"] = d_loss.detach().reshape(1)
    gan[f"{variant}.g_loss"] = g_loss.detach().reshape(1)
save_file({k: v.contiguous() for k, v in gan.items()}, str(root / "Tests/TrainingTests/Fixtures/gan_step.safetensors"))
print("wrote", len(out), "spectral-norm and", len(gan), "GAN-step tensors")
