"""PyTorch reference for DCGANGenerator / DCGANDiscriminator (Tests/NNTests/DCGANTests.swift).

The networks of PyTorch's DCGAN example (Radford et al. 2016) at small widths for 16 x 16
images, without the discriminator's final sigmoid; both run in training mode (batch-norm batch
statistics). Writes dcgan.safetensors: g.<key>, d.<key>, z, image (G(z)), logits (D(G(z))).

    python3 Tests/NNTests/Fixtures/make_dcgan_fixtures.py
"""
import pathlib

import torch
from safetensors.torch import save_file
from torch import nn


def generator(latent, widths, channels):
    layers = [nn.ConvTranspose2d(latent, widths[0], 4, 1, 0, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(True)]
    for cin, cout in zip(widths, widths[1:]):
        layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
    layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def discriminator(channels, widths):
    layers = [nn.Conv2d(channels, widths[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    for cin, cout in zip(widths, widths[1:]):
        layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True)]
    layers += [nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False), nn.Flatten()]
    return nn.Sequential(*layers)


def main():
    torch.manual_seed(18)
    g, d = generator(8, [16, 8], 1), discriminator(1, [8, 16])
    with torch.no_grad():
        for m in list(g.modules()) + list(d.modules()):
            if isinstance(m, nn.BatchNorm2d):   # non-trivial affine parameters
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    g.train(); d.train()
    z = torch.randn(4, 8)
    image = g(z.view(4, 8, 1, 1))
    logits = d(image)
    tensors = {"z": z, "image": image, "logits": logits}
    tensors.update({"g.net." + k: v for k, v in g.state_dict().items() if "num_batches" not in k})
    tensors.update({"d.net." + k: v for k, v in d.state_dict().items() if "num_batches" not in k})
    out = pathlib.Path(__file__).resolve().parent / "dcgan.safetensors"
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(out))
    print(out, image.shape, logits.shape)
    print("DCGAN example parameters (3 bands): G", sum(p.numel() for p in generator(100, [512, 256, 128, 64], 3).parameters()),
          "D", sum(p.numel() for p in discriminator(3, [64, 128, 256, 512]).parameters()))


if __name__ == "__main__":
    main()
