"""The extra cases of this folder: small NVlabs/edm pickles and their reference outputs, made with NVlabs/edm's own
code exactly as README.md describes. Run OUTSIDE the project with a checkout of NVlabs/edm (commit 008a4e5):

    python make_extra.py PATH/TO/NVlabs-edm OUT_DIR

(`generate.py` imports click, so its `edm_sampler` and `StackedRandomGenerator` are taken from its source.)"""
import json, pickle, sys
import numpy as np, torch
NVLABS, OUT = sys.argv[1], sys.argv[2]
sys.path.insert(0, NVLABS)
torch.set_num_threads(1)
from training import networks, loss, augment
import types, re
_src = open(f"{NVLABS}/generate.py").read()
generate = types.SimpleNamespace()
_ns = dict(torch=torch, np=np)
for _name in ("def edm_sampler", "class StackedRandomGenerator"):
    _start = _src.index(_name); _end = _src.index("#----", _start)
    exec(_src[_start:_end], _ns)
generate.edm_sampler, generate.StackedRandomGenerator = _ns["edm_sampler"], _ns["StackedRandomGenerator"]

CASES = [
    dict(name="vp-ddpmpp-uncond", precond="VPPrecond", seed=200, loss="VPLoss", aug=None,
         kwargs=dict(img_resolution=8, img_channels=3, label_dim=0, use_fp16=False, beta_d=19.9, beta_min=0.1, M=1000, epsilon_t=1e-5,
                     model_type="SongUNet", model_channels=8, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4],
                     dropout=0.1, embedding_type="positional", encoder_type="standard", decoder_type="standard",
                     channel_mult_noise=1, resample_filter=[1, 1])),
    dict(name="ve-ncsnpp-cond", precond="VEPrecond", seed=201, loss="VELoss", aug=dict(p=0.12),
         kwargs=dict(img_resolution=8, img_channels=3, label_dim=3, use_fp16=False, sigma_min=0.02, sigma_max=100,
                     model_type="SongUNet", augment_dim=9, model_channels=8, channel_mult=[1, 2, 2], num_blocks=1,
                     attn_resolutions=[4], dropout=0.13, embedding_type="fourier", encoder_type="residual",
                     decoder_type="standard", channel_mult_noise=2, resample_filter=[1, 3, 3, 1])),
    dict(name="edm-gray8-uncond", precond="EDMPrecond", seed=202, loss="EDMLoss", aug=None,
         kwargs=dict(img_resolution=8, img_channels=1, label_dim=0, use_fp16=True, sigma_data=0.5,
                     model_type="SongUNet", model_channels=8, channel_mult=[1, 2], channel_mult_emb=2, num_blocks=2,
                     attn_resolutions=[], dropout=0.0, embedding_type="positional", encoder_type="skip",
                     decoder_type="skip", channel_mult_noise=1, resample_filter=[1, 1])),
    dict(name="edm-adm-cond", precond="EDMPrecond", seed=203, loss="EDMLoss", aug=None,
         kwargs=dict(img_resolution=8, img_channels=3, label_dim=4, use_fp16=False, sigma_data=0.5,
                     model_type="DhariwalUNet", model_channels=64, channel_mult=[1], channel_mult_emb=1, num_blocks=1,
                     attn_resolutions=[], dropout=0.1)),
    dict(name="vp-ddpmpp-cond-gray", precond="VPPrecond", seed=204, loss="VPLoss", aug=None,
         kwargs=dict(img_resolution=8, img_channels=1, label_dim=2, use_fp16=False,
                     model_type="SongUNet", model_channels=8, channel_mult=[2, 2], num_blocks=1, attn_resolutions=[8],
                     dropout=0.1)),
]
SIGMAS = [0.002, 0.01, 0.3, 1.0, 7.0, 80.0]

cases_json = []
for case in CASES:
    torch.manual_seed(case["seed"])
    net = getattr(networks, case["precond"])(**case["kwargs"])
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 0.08)
    ema = net.eval().requires_grad_(False)
    pipe = augment.AugmentPipe(p=case["aug"]["p"], xflip=1e8, yflip=1, scale=1, rotate_frac=1, aniso=1, translate_frac=1) if case["aug"] else None
    data = dict(ema=ema, loss_fn=getattr(loss, case["loss"])(), augment_pipe=pipe,
                dataset_kwargs=dict(class_name="training.dataset.ImageFolderDataset", path="datasets/x.zip",
                                    use_labels=ema.label_dim > 0, xflip=False, cache=True,
                                    resolution=ema.img_resolution, max_size=1000))
    with open(f"{OUT}/{case['name']}.pkl", "wb") as f:
        pickle.dump(data, f)
    C, R, K = ema.img_channels, ema.img_resolution, ema.label_dim
    g = torch.Generator().manual_seed(case["seed"])
    x = torch.randn([6, C, R, R], generator=g, dtype=torch.float64)
    sigma = ema.round_sigma(torch.tensor(SIGMAS, dtype=torch.float64))
    labels = torch.eye(K)[torch.randint(K, size=[6], generator=g)] if K else torch.zeros([6, 0])
    with torch.no_grad():
        D = ema(x, sigma, labels if K else None).to(torch.float64)
        seeds = [0, 1, 2, 3]
        rnd = generate.StackedRandomGenerator("cpu", seeds)
        latents = rnd.randn([4, C, R, R])
        class_labels = torch.eye(K)[rnd.randint(K, size=[4])] if K else None
        samples = generate.edm_sampler(ema, latents, class_labels, randn_like=rnd.randn_like, num_steps=18)
    np.savez(f"{OUT}/{case['name']}.npz", x=x.numpy(), sigma=sigma.numpy(), class_labels=labels.numpy(), D=D.numpy(),
             seeds=np.array(seeds), sample_class_labels=(class_labels if K else torch.zeros([4, 0])).numpy(),
             samples=samples.numpy())
    cases_json.append(dict(name=case["name"], precond=case["precond"], kwargs=case["kwargs"], seed=case["seed"],
                           sampler="generate.edm_sampler(num_steps=18), seeds 0-3, labels drawn as generate.py does"))
    print(case["name"], sum(p.numel() for p in ema.parameters()), float(D.abs().max()), float(samples.abs().max()), flush=True)
json.dump(cases_json, open(f"{OUT}/cases-extra.json", "w"), indent=1)
