"""Layer-shape tables of VGG-16, ResNet-18, ResNet-50 and MobileNet-v2 at 224×224 input (shapes only), and a tiny CNN.

Only layers with weights are listed (convolutions and fully-connected layers; no BN, bias, pooling). Shapes follow
the torchvision definitions (ResNet-50 v1.5: the stride sits on the 3×3 conv of a bottleneck). ``kind``:

- ``conv``: OIHW weights ``[cout, cin, k, k]``, ``positions = out_hw²`` output pixels per image;
- ``dw``: depthwise conv, weights ``[c, 1, k, k]`` (one kernel per channel, ``cin == cout == c``);
- ``fc``: weights ``[cout, cin]``, one position.
"""

from dataclasses import dataclass

__all__ = ["Layer", "NETWORKS", "network"]


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str
    cin: int
    cout: int
    k: int = 1
    out_hw: int = 1
    count: int = 0          # output positions per inference when given explicitly (user weights); 0: out_hw²

    @property
    def shape(self) -> tuple:
        if self.kind == "fc":
            return (self.cout, self.cin)
        return (self.cout, 1 if self.kind == "dw" else self.cin, self.k, self.k)

    @property
    def positions(self) -> int:
        if self.count:
            return self.count
        return 1 if self.kind == "fc" else self.out_hw * self.out_hw

    @property
    def n_weights(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def vgg16():
    layers, cin, hw = [], 3, 224
    for stage, (width, convs) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], 1):
        for i in range(1, convs + 1):
            layers.append(Layer(f"conv{stage}_{i}", "conv", cin, width, 3, hw))
            cin = width
        hw //= 2
    layers += [Layer("fc6", "fc", 512 * 7 * 7, 4096), Layer("fc7", "fc", 4096, 4096), Layer("fc8", "fc", 4096, 1000)]
    return layers


def _resnet(blocks, bottleneck):
    layers = [Layer("conv1", "conv", 3, 64, 7, 112)]
    cin, hw = 64, 56
    for stage, n_blocks in enumerate(blocks, 1):
        width = 64 * 2 ** (stage - 1)
        out = width * 4 if bottleneck else width
        for b in range(n_blocks):
            stride = 2 if stage > 1 and b == 0 else 1
            hw_out = hw // stride
            p = f"layer{stage}.{b}"
            if bottleneck:
                layers += [Layer(f"{p}.conv1", "conv", cin, width, 1, hw), Layer(f"{p}.conv2", "conv", width, width, 3, hw_out),
                           Layer(f"{p}.conv3", "conv", width, out, 1, hw_out)]
            else:
                layers += [Layer(f"{p}.conv1", "conv", cin, width, 3, hw_out), Layer(f"{p}.conv2", "conv", width, width, 3, hw_out)]
            if b == 0 and (stride != 1 or cin != out):
                layers.append(Layer(f"{p}.downsample", "conv", cin, out, 1, hw_out))
            cin, hw = out, hw_out
    layers.append(Layer("fc", "fc", cin, 1000))
    return layers


def resnet18():
    return _resnet([2, 2, 2, 2], bottleneck=False)


def resnet50():
    return _resnet([3, 4, 6, 3], bottleneck=True)


def mobilenet_v2():
    layers = [Layer("features.0", "conv", 3, 32, 3, 112)]
    cin, hw, index = 32, 112, 1
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                       (6, 320, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            p = f"features.{index}"
            if t != 1:
                layers.append(Layer(f"{p}.expand", "conv", cin, hidden, 1, hw))
            hw //= stride
            layers += [Layer(f"{p}.dw", "dw", hidden, hidden, 3, hw), Layer(f"{p}.project", "conv", hidden, c, 1, hw)]
            cin, index = c, index + 1
    layers += [Layer("features.18", "conv", cin, 1280, 1, hw), Layer("classifier", "fc", 1280, 1000)]
    return layers


def tiny():
    """A small CNN for tests and quick runs: 32×32 input, every layer kind."""
    return [Layer("conv1", "conv", 3, 16, 3, 32), Layer("conv2", "conv", 16, 32, 3, 16),
            Layer("dw3", "dw", 32, 32, 3, 16), Layer("pw3", "conv", 32, 64, 1, 16), Layer("fc", "fc", 64, 10)]


NETWORKS = {"tiny": tiny, "vgg16": vgg16, "resnet18": resnet18, "resnet50": resnet50, "mobilenetv2": mobilenet_v2}


def network(name: str) -> list[Layer]:
    """The layer table of a network; ``ValueError`` naming the allowed names otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"--net {name!r} is a {type(name).__name__}, not a str: allowed {', '.join(NETWORKS)}")
    if name not in NETWORKS:
        raise ValueError(f"--net {name!r} is not known: allowed {', '.join(NETWORKS)}")
    return NETWORKS[name]()
