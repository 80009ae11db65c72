#!/usr/bin/env python3
"""Writes a tiny DeepBooru (DeepDanbooru resnet_custom_v3) checkpoint and PyTorch's answers to
tests/data/deepbooru/.

Needs torch and Pillow, which the test suite does not install; run it once and commit what it
writes:

    /work/diff-venv/bin/python tools/reference/make_deepbooru_fixtures.py

The network is written here from the layer list of AUTOMATIC1111's modules/deepbooru_model.py
(the file A1111 loads model-resnet_custom_v3.pt with): the same 179 convolutions n_Conv_0 ..
n_Conv_178 with the same kernels, strides, paddings and wiring, but every channel width divided
by WIDTH_DIV and TAGS tags instead of 9176, so the checkpoint stays small. The weights are random.
The file is written as A1111's is: torch.save of one dict holding the state dict's tensors and a
`tags` list of strings.

Preprocessing is A1111's deepbooru.py with default settings: images.resize_image(2, ...) ("resize
and fill": fit inside 512x512 keeping the aspect ratio with PIL's LANCZOS, centred, the empty
bands filled by stretching the edge rows or columns), RGB, /255, NHWC, no normalisation.

--full writes a full-width model with random weights (no fixtures) for the benchmark.
"""
import argparse
import hashlib
import json
import pathlib

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "deepbooru"
WIDTH_DIV = 32
SIZE = 512

# Tag names in the style of Danbooru's: underscores, parentheses, kaomoji, and the three ratings
# (which A1111 drops from the tag line).
TAGS = ["1girl", "solo", "long_hair", "rating:safe", "smile", "looking_at_viewer", "blush",
        "short_hair", "open_mouth", "hatsune_miku_(cosplay)", "^_^", ":d", "rating:questionable",
        "blue_eyes", "simple_background", "white_background", "holding", "1boy", "outdoors",
        "rating:explicit", "sky", "(o)_(o)", "twintails", "hat"]


def layer_list(div, n_tags):
    """(name, in, out, kernel, stride) per conv, and the forward's block structure.

    Stages as deepbooru_model.py wires them: a 7x7/2 stem and a 3x3/2 max pool, then bottleneck
    blocks (1x1 reduce, 3x3, 1x1 expand, residual add, ReLU). The first block of each stage (and
    one block in the middle of the third) downsamples: a 1x1 projection (stride 2 except in the
    first stage) beside a 3x3/2 main path.
    """
    convs = []
    blocks = []  # (proj index or None, [three main indices], stride, proj_first)

    def conv(cin, cout, k, s=1):
        convs.append((f"n_Conv_{len(convs)}", cin, cout, k, s))
        return len(convs) - 1

    w = lambda c: max(1, c // div)  # noqa: E731
    conv(3, w(64), 7, 2)
    cin = w(64)
    # (mid, out, blocks) with the block indices where a downsample sits.
    stages = [(64, 256, 3, {0: 1}), (128, 512, 8, {0: 2}), (256, 1024, 40, {0: 2, 20: 2}),
              (512, 2048, 3, {0: 2}), (1024, 4096, 3, {0: 2})]
    for mid, out, n, downs in stages:
        for b in range(n):
            if b in downs:
                s = downs[b]
                if b == 0:  # the projection is created (and run) before the main path
                    p = conv(cin, w(out), 1, s)
                    m = [conv(cin, w(mid), 1), conv(w(mid), w(mid), 3, s), conv(w(mid), w(out), 1)]
                    blocks.append((p, m, s, True))
                else:  # the mid-stage downsample: main path first, projection after
                    m = [conv(cin, w(mid), 1), conv(w(mid), w(mid), 3, s), conv(w(mid), w(out), 1)]
                    p = conv(w(out), w(out), 1, s)
                    blocks.append((p, m, s, False))
            else:
                m = [conv(cin, w(mid), 1), conv(w(mid), w(mid), 3), conv(w(mid), w(out), 1)]
                blocks.append((None, m, 1, True))
            cin = w(out)
    conv(cin, n_tags, 1)
    assert len(convs) == 179, len(convs)
    return convs, blocks


class TinyDeepDanbooru(torch.nn.Module):
    def __init__(self, div, n_tags):
        super().__init__()
        self.convs, self.blocks = layer_list(div, n_tags)
        for name, cin, cout, k, s in self.convs:
            setattr(self, name, torch.nn.Conv2d(cin, cout, k, stride=s, bias=name != "n_Conv_178"))

    def c(self, i):
        return getattr(self, f"n_Conv_{i}")

    def forward(self, x):  # x: NHWC in 0..1
        return torch.sigmoid(self.logits(x))

    def logits(self, x):
        x = x.permute(0, 3, 1, 2)
        # TensorFlow's "same" padding for 7x7/2 on an even size: 2 before, 3 after.
        x = F.relu(self.c(0)(F.pad(x, [2, 3, 2, 3])))
        x = F.max_pool2d(F.pad(x, [0, 1, 0, 1], value=float("-inf")), 3, 2)
        for proj, (a, b, c), s, _ in self.blocks:
            h = F.relu(self.c(a)(x))
            h = F.pad(h, [1, 1, 1, 1] if s == 1 else [0, 1, 0, 1])
            h = self.c(c)(F.relu(self.c(b)(h)))
            x = F.relu(h + (self.c(proj)(x) if proj is not None else x))
        return self.c(178)(x).mean(dim=(2, 3))


def resize_and_fill(im, width=SIZE, height=SIZE):
    """A1111's images.resize_image(2, im, width, height) with no upscaler (PIL's LANCZOS)."""
    ratio, src_ratio = width / height, im.width / im.height
    src_w = width if ratio < src_ratio else im.width * height // im.height
    src_h = height if ratio >= src_ratio else im.height * width // im.width
    resized = im.resize((src_w, src_h), resample=Image.LANCZOS)
    res = Image.new("RGB", (width, height))
    res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
    if ratio < src_ratio:
        fill = height // 2 - src_h // 2
        res.paste(resized.resize((width, fill), box=(0, 0, width, 0)), box=(0, 0))
        res.paste(resized.resize((width, fill), box=(0, resized.height, width, resized.height)),
                  box=(0, fill + src_h))
    elif ratio > src_ratio:
        fill = width // 2 - src_w // 2
        res.paste(resized.resize((fill, height), box=(0, 0, 0, height)), box=(0, 0))
        res.paste(resized.resize((fill, height), box=(resized.width, 0, resized.width, height)),
                  box=(fill + src_w, 0))
    return res


def test_images():
    """Two deterministic opaque RGB pictures: a wide one (bands above and below) and a tall one
    (bands left and right). Opaque because eight composites alpha over white where A1111's
    convert("RGB") drops it (docs/deepbooru.md)."""
    rng = np.random.default_rng(7)
    h, w = 201, 300
    y, x = np.mgrid[0:h, 0:w]
    wide = np.stack([x * 255 // w, y * 255 // h, (x + y) % 256], -1) + rng.integers(0, 40, (h, w, 3))
    h, w = 257, 150
    y, x = np.mgrid[0:h, 0:w]
    tall = np.stack([(x * y) % 256, 255 - y * 255 // h, (3 * x) % 256], -1)
    tall[40:90, 30:110, :3] = [250, 30, 60]
    return [("wide.png", Image.fromarray(np.clip(wide, 0, 255).astype(np.uint8), "RGB")),
            ("tall.png", Image.fromarray(tall.astype(np.uint8), "RGB"))]


def init_weights(model, generator):
    """He-normal convolutions; the last conv of each residual block scaled down so 60 blocks keep
    the activations in range; biases small."""
    last = {m[2] for _, m, _, _ in model.blocks}
    with torch.no_grad():
        for name, cin, _, k, _ in model.convs:
            conv = getattr(model, name)
            std = (2.0 / (cin * k * k)) ** 0.5
            if int(name.split("_")[-1]) in last:
                std *= 0.3
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator, dtype=torch.float64) * std)
            if conv.bias is not None:
                conv.bias.copy_(torch.randn(conv.bias.shape, generator=generator, dtype=torch.float64) * 0.05)


def pixels(im):
    return np.asarray(resize_and_fill(im.convert("RGB")), dtype=np.float32)[None] / 255


def preprocessed_summary(im):
    a = np.asarray(resize_and_fill(im.convert("RGB")), dtype=np.uint8)
    return {"sha256": hashlib.sha256(a.tobytes()).hexdigest(),
            "row_sums": [int(v) for v in a.reshape(SIZE, -1).sum(axis=1, dtype=np.int64)]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", metavar="OUT.pt", help="write a full-width random model instead")
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(22)
    if args.full:
        model = TinyDeepDanbooru(1, 9176).eval()
        init_weights(model, gen)
        with torch.no_grad():  # unsaturated probabilities, as for the fixture
            x = torch.from_numpy(pixels(test_images()[0][1]))
            model.n_Conv_178.weight.mul_(3.0 / model.logits(x).std())
        sd = {k: v.float() for k, v in model.state_dict().items()}
        sd["tags"] = [f"tag_{i}" for i in range(9173)] + ["rating:safe", "rating:questionable",
                                                          "rating:explicit"]
        torch.save(sd, args.full)
        return
    DATA.mkdir(parents=True, exist_ok=True)
    model = TinyDeepDanbooru(WIDTH_DIV, len(TAGS)).double().eval()
    init_weights(model, gen)
    images = test_images()
    for name, im in images:
        im.save(DATA / name)
    inputs = [torch.from_numpy(pixels(Image.open(DATA / name)).astype(np.float64)) for name, _ in images]
    with torch.no_grad():
        # Spread the logits (about unit std, then x3) so the sigmoid is not saturated and the
        # threshold tests see tags on both sides.
        lg = torch.cat([model.logits(x) for x in inputs])
        model.n_Conv_178.weight.mul_(3.0 / lg.std())
        probs = [model(x)[0].numpy() for x in inputs]
    sd = {k: v.float().contiguous() for k, v in model.state_dict().items()}
    sd["tags"] = list(TAGS)
    torch.save(sd, DATA / "model-tiny.pt")
    expected = {"generator": "tools/reference/make_deepbooru_fixtures.py",
                "width_div": WIDTH_DIV, "size": SIZE, "tags": TAGS,
                "images": {name: [float(p) for p in pr] for (name, _), pr in zip(images, probs)},
                # The 512x512 RGB bytes A1111's preprocessing gives: a hash, and per-row sums to
                # locate a difference.
                "preprocessed": {name: preprocessed_summary(Image.open(DATA / name))
                                 for name, _ in images}}
    (DATA / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    # Small broken checkpoints (the stem alone): eight must refuse each naming the problem.
    stem = {k: v for k, v in sd.items() if k.startswith("n_Conv_0.")}
    torch.save({**stem, "tags": list(TAGS)}, DATA / "bad-missing.pt")  # no n_Conv_1
    odd = dict(stem, **{"n_Conv_0.weight": stem["n_Conv_0.weight"][:, :, :5, :5].contiguous()})
    torch.save({**odd, "tags": list(TAGS)}, DATA / "bad-shape.pt")
    torch.save(stem, DATA / "bad-no-tags.pt")
    for name, pr in zip(images, probs):
        print(name[0], np.round(pr, 3))


if __name__ == "__main__":
    main()
