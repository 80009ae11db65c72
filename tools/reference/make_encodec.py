#!/usr/bin/env python3
"""EnCodec 32 kHz decoder fixtures for tests/python/test_encodec.py (run with /work/diff-venv).

A tiny random transformers EncodecModel shaped like facebook/encodec_32khz (mono, ratios
[8, 5, 4, 4] = 640 samples per frame, 4 codebooks of 2048, 2-layer LSTM, non-causal, weight
norm) but with 2 filters and an 8-wide latent, written two ways:

  hf/          transformers' save_pretrained directory (config.json, model.safetensors; the
               weight norm as parametrizations.weight.original0/1)
  audiocraft/  audiocraft's compression_state_dict.bin as audiocraft.utils.export.export_encodec
               writes it: {'best_state': state dict, 'xp.cfg': YAML text, 'version', 'exported'},
               decoder.model.N.conv.conv.weight_g/_v names, quantizer.vq.layers.i._codebook.embed

plus codes.npy (int32 [4, T]) and the audio each layout decodes to (float32 [T * 640]):
audio_hf.npy (HF config: pad_mode reflect) and audio_audiocraft.npy (audiocraft's default
seanet config: pad_mode constant).

The audiocraft layout is checked with audiocraft's own SEANetDecoder when its source is given
(--audiocraft-src DIR: an unpacked `pip download audiocraft --no-deps` sdist; only
modules/conv.py, lstm.py and seanet.py are imported, as a stub package, since the package's
other dependencies do not install here): the converted state dict must load strictly, and with
pad_mode reflect it must decode exactly what transformers decodes.

To stay under 1 MB, the encoder (unused by decoding) is not written, and neither file keeps the
codebooks' EMA buffer embed_avg; both otherwise carry every buffer the libraries save.
"""
import argparse
import importlib.util
import os
import shutil
import sys
import types

import numpy as np
import torch
import yaml
from safetensors.torch import load_file, save_file
from transformers import EncodecConfig, EncodecModel

HIDDEN, FILTERS, RATIOS, N_Q, BINS, FRAMES = 8, 2, [8, 5, 4, 4], 4, 2048, 10


def tiny_config():
    return EncodecConfig(upsampling_ratios=RATIOS, target_bandwidths=[2.2], num_filters=FILTERS,
                         sampling_rate=32000, codebook_size=BINS, use_causal_conv=False,
                         normalize=False, use_conv_shortcut=False, hidden_size=HIDDEN,
                         codebook_dim=HIDDEN, num_lstm_layers=2)


def randomize(model, gen):
    # Random init leaves weight_g = ||v||, which would hide a missing weight-norm fold.
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.5 if "original0" in name else 0.3
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
        for i in range(N_Q):
            cb = model.quantizer.layers[i].codebook
            cb.embed.copy_(torch.randn(cb.embed.shape, generator=gen))
            cb.inited.fill_(1)


def hf_to_audiocraft(sd):
    """transformers' decoder/quantizer names -> audiocraft's (facts from both libraries' modules:
    EncodecConv1d.conv vs StreamableConv1d.conv.conv, EncodecConvTranspose1d.conv vs
    StreamableConvTranspose1d.convtr.convtr, EncodecLSTM.lstm vs StreamableLSTM.lstm, the same
    Sequential indices; old-style weight_norm's weight_g/weight_v)."""
    out = {}
    for k, v in sd.items():
        if k.startswith("quantizer.layers."):
            i, rest = k[len("quantizer.layers."):].split(".", 1)
            if rest.endswith("embed_avg"):
                continue
            out[f"quantizer.vq.layers.{i}._codebook." + rest[len("codebook."):]] = v
            continue
        if not k.startswith("decoder.layers."):
            continue
        idx, rest = k[len("decoder.layers."):].split(".", 1)
        rest = rest.replace("parametrizations.weight.original0", "weight_g")
        rest = rest.replace("parametrizations.weight.original1", "weight_v")
        if rest.startswith("lstm."):
            pass
        elif rest.startswith("block."):
            j, tail = rest[len("block."):].split(".", 1)
            rest = f"block.{j}.conv.{tail}"  # conv.X -> conv.conv.X
        elif rest.startswith("conv."):
            transposed = _is_transposed(idx)
            rest = ("convtr.convtr." if transposed else "conv.conv.") + rest[len("conv."):]
        out[f"decoder.model.{idx}.{rest}"] = v.clone().contiguous()
    return out


def _is_transposed(idx):
    # In the decoder the transposed convolutions are the ones with kernel 2 * ratio and stride
    # ratio: layers 3, 6, 9, 12 for four ratios (conv, LSTM, then ELU + convtr + resblock each).
    return int(idx) in [3 + 3 * i for i in range(len(RATIOS))]


def xp_cfg(pad_mode):
    # The sections of audiocraft's experiment config the compression model is built from, with
    # the defaults of config/model/encodec/default.yaml and encodec_large_nq4_s640.yaml, plus a
    # few unrelated keys, as OmegaConf.to_yaml prints them (block style, insertion order).
    cfg = {
        "device": "cuda", "dtype": "float32", "seed": 2036, "sample_rate": 32000, "channels": 1,
        "solver": "compression", "compression_model": "encodec",
        "encodec": {"autoencoder": "seanet", "quantizer": "rvq", "sample_rate": 32000,
                    "channels": 1, "causal": False, "renormalize": False},
        "seanet": {"dimension": HIDDEN, "channels": 1, "causal": False, "n_filters": FILTERS,
                   "n_residual_layers": 1, "ratios": RATIOS, "activation": "ELU",
                   "activation_params": {"alpha": 1.0}, "norm": "weight_norm", "norm_params": {},
                   "kernel_size": 7, "residual_kernel_size": 3, "last_kernel_size": 7,
                   "dilation_base": 2, "pad_mode": pad_mode, "true_skip": True, "compress": 2,
                   "lstm": 2, "disable_norm_outer_blocks": 0,
                   "decoder": {"trim_right_ratio": 1.0, "final_activation": None,
                               "final_activation_params": None},
                   "encoder": {}},
        "rvq": {"n_q": N_Q, "q_dropout": False, "bins": BINS, "decay": 0.99, "kmeans_init": True,
                "kmeans_iters": 50, "threshold_ema_dead_code": 2, "orthogonal_reg_weight": 0.0,
                "orthogonal_reg_active_codes_only": False},
        "no_quant": {},
        "dset": "audio/example", "label": "encodec 32khz 'tiny' # not a comment",
    }
    return yaml.dump(cfg, default_flow_style=False, sort_keys=False)


def load_seanet(src):
    """audiocraft.modules.{conv,lstm,seanet} from an unpacked sdist, without the package's
    __init__ (which pulls in the transformer, xformers, ...)."""
    root = os.path.join(src, "audiocraft")
    for pkg in ["audiocraft", "audiocraft.modules"]:
        mod = types.ModuleType(pkg)
        mod.__path__ = [os.path.join(root, *pkg.split(".")[1:])]
        sys.modules[pkg] = mod
    for name in ["conv", "lstm", "seanet"]:
        full = f"audiocraft.modules.{name}"
        spec = importlib.util.spec_from_file_location(full, os.path.join(root, "modules",
                                                                          name + ".py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[full] = mod
        spec.loader.exec_module(mod)
    return sys.modules["audiocraft.modules.seanet"].SEANetDecoder


def audiocraft_decoder(cls, pad_mode, state):
    dec = cls(channels=1, dimension=HIDDEN, n_filters=FILTERS, n_residual_layers=1, ratios=RATIOS,
              activation="ELU", activation_params={"alpha": 1.0}, norm="weight_norm",
              kernel_size=7, last_kernel_size=7, residual_kernel_size=3, dilation_base=2,
              causal=False, pad_mode=pad_mode, true_skip=True, compress=2, lstm=2,
              trim_right_ratio=1.0)
    dec_sd = {k[len("decoder."):]: v for k, v in state.items() if k.startswith("decoder.")}
    dec.load_state_dict(dec_sd, strict=True)
    return dec.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/encodec")
    ap.add_argument("--audiocraft-src", default="", help="unpacked audiocraft sdist (optional)")
    args = ap.parse_args()
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(28)
    model = EncodecModel(tiny_config()).eval()
    randomize(model, gen)

    hf_dir = os.path.join(args.out, "hf")
    shutil.rmtree(hf_dir, ignore_errors=True)
    model.save_pretrained(hf_dir)
    # save_pretrained writes the encoder too; keep the decoder and quantizer (see above).
    st = os.path.join(hf_dir, "model.safetensors")
    kept = {k: v for k, v in load_file(st).items()
            if not k.startswith("encoder.") and not k.endswith("embed_avg")}
    save_file(kept, st, metadata={"format": "pt"})

    codes = torch.randint(0, BINS, (N_Q, FRAMES), generator=gen, dtype=torch.int64)
    codes[0, 0], codes[1, 1], codes[3, 2] = 0, BINS - 1, BINS - 1  # both ends of the range
    with torch.no_grad():
        audio_hf = model.decode(codes[None, None], [None])[0][0, 0].numpy()
        emb = model.quantizer.decode(codes[:, None, :])  # [1, HIDDEN, T]
    np.save(os.path.join(args.out, "codes.npy"), codes.numpy().astype(np.int32))
    # One frame: shorter than the first convolution's reflect padding, where audiocraft's pad1d
    # zero-extends the input first.
    with torch.no_grad():
        audio_1 = model.decode(codes[None, None, :, :1], [None])[0][0, 0].numpy()
    np.save(os.path.join(args.out, "audio_hf_1frame.npy"), audio_1.astype(np.float32))
    np.save(os.path.join(args.out, "audio_hf.npy"), audio_hf.astype(np.float32))

    state = hf_to_audiocraft(model.state_dict())
    ac_dir = os.path.join(args.out, "audiocraft")
    os.makedirs(ac_dir, exist_ok=True)
    pkg = {"best_state": state, "xp.cfg": xp_cfg("constant"), "version": "1.3.0",
           "exported": True}
    torch.save(pkg, os.path.join(ac_dir, "compression_state_dict.bin"))
    # What export_pretrained_compression_model writes for a model trained on a published
    # codec: a pointer, no weights (the loader must name it).
    torch.save({"pretrained": "facebook/encodec_32khz", "exported": True, "version": "1.3.0"},
               os.path.join(args.out, "pretrained_pointer.bin"))

    if args.audiocraft_src:
        cls = load_seanet(args.audiocraft_src)
        with torch.no_grad():
            same = audiocraft_decoder(cls, "reflect", state)(emb)[0, 0].numpy()
            audio_ac = audiocraft_decoder(cls, "constant", state)(emb)[0, 0].numpy()
        err = np.abs(same - audio_hf).max()
        print(f"audiocraft (reflect) vs transformers: max |diff| {err:.3g}")
        assert err < 1e-5, "the converted layout does not decode as transformers does"
    else:
        # Without audiocraft: transformers with the same pad mode decodes audiocraft's output.
        cfg = tiny_config()
        cfg.pad_mode = "constant"
        twin = EncodecModel(cfg).eval()
        twin.load_state_dict(model.state_dict())
        with torch.no_grad():
            audio_ac = twin.decode(codes[None, None], [None])[0][0, 0].numpy()
    np.save(os.path.join(args.out, "audio_audiocraft.npy"), audio_ac.astype(np.float32))
    print("codes", codes.shape, "audio", audio_hf.shape, "rms hf", float(np.sqrt(
        (audio_hf ** 2).mean())), "rms ac", float(np.sqrt((audio_ac ** 2).mean())))


if __name__ == "__main__":
    main()
