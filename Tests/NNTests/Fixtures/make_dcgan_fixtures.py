"""PyTorch reference for DCGANGenerator / DCGANDiscriminator (Tests/NNTests/DCGANTests.swift).

The networks of PyTorch's DCGAN example (Radford et al. 2016) at small widths for 16 x 16
images, without the discriminator's final sigmoid; both run in training mode (batch-norm batch
statistics). Writes dcgan.safetensors: g.<key>, d.<key>, z, image (G(z)), logits (D(G(z))).

Also minibatch_stddev.safetensors: StyleGAN2-ADA's MinibatchStdLayer (ProGAN's minibatch
standard deviation, one channel) on inputs of 8 images (groups of 4) and 6 images (groups of 3):
x<N>, y<N> (the output), g<N> (a direction) and grad<N> (the gradient of <y, g> for x).

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


def minibatch_stddev(x, group_size):
    """StyleGAN2-ADA's MinibatchStdLayer (training/networks.py) with num_channels = 1."""
    n, c, h, w = x.shape
    g = group_size
    y = x.reshape(g, -1, 1, c, h, w)
    y = y - y.mean(dim=0)
    y = y.square().mean(dim=0)
    y = (y + 1e-8).sqrt()
    y = y.mean(dim=[2, 3, 4])
    y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


def minibatch_fixtures():
    torch.manual_seed(4)
    tensors = {}
    for n, group in [(8, 4), (6, 3)]:
        x = torch.randn(n, 3, 4, 4, requires_grad=True)
        y = minibatch_stddev(x, group)
        g = torch.randn_like(y)
        (y * g).sum().backward()
        tensors.update({f"x{n}": x.detach(), f"y{n}": y.detach(), f"g{n}": g, f"grad{n}": x.grad})
    out = pathlib.Path(__file__).resolve().parent / "minibatch_stddev.safetensors"
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out))
    print(out)


if __name__ == "__main__":
    main()
    minibatch_fixtures()
