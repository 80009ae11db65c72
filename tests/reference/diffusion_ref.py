"""Float64 numpy reference of eight's diffusion schedulers and noise generator.

Written from the diffusers scheduler documentation and the papers (Karras et al. 2022; Lu et al.
2022, DPM-Solver++; Song et al. 2020, DDIM; Luo et al. 2023, LCM), independently of the C++ code
in src/runtime/diffusion/. tests/python/test_diffusion_schedulers.py holds it to fixtures made
with diffusers itself (tools/reference/make_diffusion_scheduler_fixtures.py) and the C++
schedulers to it.

    s = make("euler", config_dict)     # config_dict: scheduler_config.json as a dict
    s.set_timesteps(30)
    x = rng.normal(shape) * s.init_noise_sigma
    for i in range(len(s.timesteps)):
        eps = model(s.scale_model_input(x, i), s.timesteps[i])
        x = s.step(eps, i, x, rng)
"""

import math

import numpy as np

# ---------------------------------------------------------------------------------------------
# Noise: Philox4x32-10 + Box-Muller (the recipe documented in src/runtime/diffusion/rng.h).

_M0, _M1 = 0xD2511F53, 0xCD9E8D57
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_MASK = 0xFFFFFFFF


def philox4x32_10(ctr, key):
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for r in range(10):
        if r:
            k0, k1 = (k0 + _W0) & _MASK, (k1 + _W1) & _MASK
        p0, p1 = _M0 * c0, _M1 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0), p1 & _MASK, ((p0 >> 32) ^ c3 ^ k1), p0 & _MASK
    return c0, c1, c2, c3


class Rng:
    def __init__(self, seed, stream=0):
        self.seed, self.stream, self.offset = seed, stream, 0

    def normal(self, shape):
        n = int(np.prod(shape))
        blocks = (n + 3) // 4
        key = (self.seed & _MASK, (self.seed >> 32) & _MASK)
        out = []
        for b in range(blocks):
            ctr = self.offset + b
            x = philox4x32_10(
                (ctr & _MASK, ctr >> 32, self.stream & _MASK, self.stream >> 32), key)
            for pair in range(2):
                u0 = (x[2 * pair] + 0.5) / 2.0**32
                u1 = (x[2 * pair + 1] + 0.5) / 2.0**32
                r = math.sqrt(-2.0 * math.log(u0))
                out += [r * math.cos(2 * math.pi * u1), r * math.sin(2 * math.pi * u1)]
        self.offset += blocks
        return np.array(out[:n], dtype=np.float32).astype(np.float64).reshape(shape)


# ---------------------------------------------------------------------------------------------
# Shared schedule arithmetic.

def alphas_cumprod(cfg):
    n = cfg.get("num_train_timesteps", 1000)
    start, end = cfg.get("beta_start", 0.0001), cfg.get("beta_end", 0.02)
    kind = cfg.get("beta_schedule", "linear")
    if kind == "linear":
        betas = np.linspace(start, end, n)
    elif kind == "scaled_linear":
        betas = np.linspace(start**0.5, end**0.5, n) ** 2
    else:
        raise ValueError(f"beta_schedule {kind}")
    return np.cumprod(1.0 - betas)


def karras(sigma_min, sigma_max, n, rho=7.0):
    ramp = np.linspace(0, 1, n)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (hi + ramp * (lo - hi)) ** rho


def sigma_to_t(sigma, log_sigmas):
    ls = np.log(max(sigma, 1e-10))
    below = np.nonzero(log_sigmas <= ls)[0]
    low = below[-1] if len(below) else 0
    low = min(low, len(log_sigmas) - 2)
    lo, hi = log_sigmas[low], log_sigmas[low + 1]
    w = np.clip((lo - ls) / (lo - hi), 0, 1)
    return (1 - w) * low + w * (low + 1)


def spaced(cfg, n, spacing, kind):
    """Timesteps of `n` steps. kind: "euler" (float), "dpm" (n + 1 points, last dropped),
    "ddim" (rounded)."""
    T = cfg.get("num_train_timesteps", 1000)
    off = cfg.get("steps_offset", 0)
    if spacing == "linspace":
        if kind == "dpm":
            return np.round(np.linspace(0, T - 1, n + 1))[::-1][:-1].copy()
        ts = np.linspace(0, T - 1, n)[::-1].copy()
        return np.round(ts) if kind == "ddim" else ts
    if spacing == "leading":
        if kind == "dpm":
            return (np.arange(0, n + 1) * (T // (n + 1)))[::-1][:-1].astype(np.float64) + off
        return (np.arange(0, n) * (T // n))[::-1].astype(np.float64) + off
    if spacing == "trailing":
        return np.round(np.arange(T, 0, -T / n)) - 1
    raise ValueError(spacing)


def x0_sigma(pred, out, x, sigma):
    if pred == "epsilon":
        return x - sigma * out
    if pred == "v_prediction":
        return out * (-sigma / (sigma**2 + 1) ** 0.5) + x / (sigma**2 + 1)
    return out


def x0_eps_alpha(pred, out, x, a):
    if pred == "epsilon":
        return (x - (1 - a) ** 0.5 * out) / a**0.5, out
    if pred == "sample":
        return out, (x - a**0.5 * out) / (1 - a) ** 0.5
    return a**0.5 * x - (1 - a) ** 0.5 * out, a**0.5 * out + (1 - a) ** 0.5 * x


# ---------------------------------------------------------------------------------------------
# Schedulers.

class Euler:
    def __init__(self, cfg, ancestral=False):
        self.cfg, self.ancestral = cfg, ancestral
        self.ac = alphas_cumprod(cfg)
        self.pred = cfg.get("prediction_type", "epsilon")
        self.spacing = cfg.get("timestep_spacing") or "linspace"

    def set_timesteps(self, n):
        ts = spaced(self.cfg, n, self.spacing, "euler")
        train = ((1 - self.ac) / self.ac) ** 0.5
        sig = np.interp(ts, np.arange(len(train)), train)
        if not self.ancestral and self.cfg.get("use_karras_sigmas", False):
            sig = karras(sig[-1], sig[0], n)
            ts = np.array([sigma_to_t(s, np.log(train)) for s in sig])
        last = 0.0
        if not self.ancestral and self.cfg.get("final_sigmas_type", "zero") == "sigma_min":
            last = train[0]
        self.timesteps, self.sigmas = ts, np.concatenate([sig, [last]])

    @property
    def init_noise_sigma(self):
        m = self.sigmas.max()
        return m if self.spacing in ("linspace", "trailing") else (m * m + 1) ** 0.5

    def scale_model_input(self, x, i):
        return x / (self.sigmas[i] ** 2 + 1) ** 0.5

    def add_noise(self, x0, noise, i):
        return x0 + noise * self.sigmas[i]

    def step(self, out, i, x, rng):
        s, nxt = self.sigmas[i], self.sigmas[i + 1]
        d = (x - x0_sigma(self.pred, out, x, s)) / s
        if not self.ancestral:
            return x + d * (nxt - s)
        up = (nxt**2 * (s**2 - nxt**2) / s**2) ** 0.5
        down = (nxt**2 - up**2) ** 0.5
        return x + d * (down - s) + rng.normal(x.shape) * up


class DPMSolverPP2M:
    def __init__(self, cfg):
        self.cfg = cfg
        self.ac = alphas_cumprod(cfg)
        self.pred = cfg.get("prediction_type", "epsilon")
        self.order = cfg.get("solver_order", 2)

    def set_timesteps(self, n):
        spacing = self.cfg.get("timestep_spacing") or "linspace"
        ts = spaced(self.cfg, n, spacing, "dpm")
        train = ((1 - self.ac) / self.ac) ** 0.5
        if self.cfg.get("use_karras_sigmas", False):
            sig = karras(train[0], train[-1], n)
            ts = np.round(np.array([sigma_to_t(s, np.log(train)) for s in sig]))
        else:
            sig = np.interp(ts, np.arange(len(train)), train)
        last = train[0] if self.cfg.get("final_sigmas_type", "zero") == "sigma_min" else 0.0
        self.timesteps, self.sigmas = ts, np.concatenate([sig, [last]])
        self.prev, self.lower = None, 0

    init_noise_sigma = 1.0

    def scale_model_input(self, x, i):
        return x

    @staticmethod
    def vp(sigma):
        a = 1 / (sigma**2 + 1) ** 0.5
        return a, sigma * a

    def add_noise(self, x0, noise, i):
        a, s = self.vp(self.sigmas[i])
        return a * x0 + s * noise

    def step(self, out, i, x, rng):
        n = len(self.timesteps)
        final = i == n - 1 and (self.cfg.get("euler_at_final", False)
                                or (self.cfg.get("lower_order_final", True) and n < 15)
                                or self.cfg.get("final_sigmas_type", "zero") == "zero")
        a_s, s_s = self.vp(self.sigmas[i])
        if self.pred == "epsilon":
            m0 = (x - s_s * out) / a_s
        elif self.pred == "v_prediction":
            m0 = a_s * x - s_s * out
        else:
            m0 = out
        a_t, s_t = self.vp(self.sigmas[i + 1])
        lam = lambda a, s: math.log(a) - math.log(s) if s > 0 else math.inf
        h = lam(a_t, s_t) - lam(a_s, s_s)
        c = a_t * (math.exp(-h) - 1)
        if self.order == 1 or self.lower < 1 or final:
            y = (s_t / s_s) * x - c * m0
        else:
            a_1, s_1 = self.vp(self.sigmas[i - 1])
            r0 = (lam(a_s, s_s) - lam(a_1, s_1)) / h
            d1 = (m0 - self.prev) / r0
            y = (s_t / s_s) * x - c * m0 - 0.5 * c * d1
        self.prev = m0
        self.lower = min(self.lower + 1, self.order)
        return y


class DDIM:
    def __init__(self, cfg):
        self.cfg = cfg
        self.ac = alphas_cumprod(cfg)
        self.pred = cfg.get("prediction_type", "epsilon")
        self.final = 1.0 if cfg.get("set_alpha_to_one", True) else self.ac[0]
        self.clip = cfg.get("clip_sample", True)
        self.eta = cfg.get("eta", 0.0)

    def set_timesteps(self, n):
        self.timesteps = spaced(self.cfg, n, self.cfg.get("timestep_spacing") or "leading", "ddim")
        self.sigmas = np.array([])

    init_noise_sigma = 1.0

    def scale_model_input(self, x, i):
        return x

    def alpha(self, t):
        return self.ac[int(t)] if t >= 0 else self.final

    def add_noise(self, x0, noise, i):
        a = self.ac[int(self.timesteps[i])]
        return a**0.5 * x0 + (1 - a) ** 0.5 * noise

    def step(self, out, i, x, rng):
        T = self.cfg.get("num_train_timesteps", 1000)
        t = int(self.timesteps[i])
        a_t, a_p = self.alpha(t), self.alpha(t - T // len(self.timesteps))
        x0, eps = x0_eps_alpha(self.pred, out, x, a_t)
        if self.clip:
            r = self.cfg.get("clip_sample_range", 1.0)
            x0 = np.clip(x0, -r, r)
        std = self.eta * ((1 - a_p) / (1 - a_t) * (1 - a_t / a_p)) ** 0.5
        y = a_p**0.5 * x0 + (1 - a_p - std**2) ** 0.5 * eps
        if self.eta > 0:
            y = y + std * rng.normal(x.shape)
        return y


class LCM:
    def __init__(self, cfg):
        self.cfg = cfg
        self.ac = alphas_cumprod(cfg)
        self.pred = cfg.get("prediction_type", "epsilon")
        self.final = 1.0 if cfg.get("set_alpha_to_one", True) else self.ac[0]
        self.clip = cfg.get("clip_sample", False)

    def set_timesteps(self, n):
        T = self.cfg.get("num_train_timesteps", 1000)
        orig = self.cfg.get("original_inference_steps", 50)
        origin = (np.arange(1, orig + 1) * (T // orig) - 1)[::-1]
        idx = np.floor(np.linspace(0, len(origin), n, endpoint=False)).astype(np.int64)
        self.timesteps = origin[idx].astype(np.float64)
        self.sigmas = np.array([])

    init_noise_sigma = 1.0

    def scale_model_input(self, x, i):
        return x

    add_noise = DDIM.add_noise

    def step(self, out, i, x, rng):
        n = len(self.timesteps)
        t = int(self.timesteps[i])
        prev = int(self.timesteps[i + 1]) if i + 1 < n else t
        a_t = self.ac[t]
        a_p = self.ac[prev] if prev >= 0 else self.final
        st = t * self.cfg.get("timestep_scaling", 10.0)
        c_skip, c_out = 0.25 / (st**2 + 0.25), st / (st**2 + 0.25) ** 0.5
        x0, _ = x0_eps_alpha(self.pred, out, x, a_t)
        if self.clip:
            r = self.cfg.get("clip_sample_range", 1.0)
            x0 = np.clip(x0, -r, r)
        den = c_out * x0 + c_skip * x
        if i == n - 1:
            return den
        return a_p**0.5 * den + (1 - a_p) ** 0.5 * rng.normal(x.shape)


def make(name, cfg):
    if name == "euler":
        return Euler(cfg)
    if name == "euler_a":
        return Euler(cfg, ancestral=True)
    if name == "dpm++2m":
        return DPMSolverPP2M(cfg)
    if name == "ddim":
        return DDIM(cfg)
    if name == "lcm":
        return LCM(cfg)
    raise ValueError(name)


# ---------------------------------------------------------------------------------------------
# The fixed test trajectory shared by the fixtures, this reference and the C++ tests.

SHAPE = (1, 4, 3, 5)


def toy_model(x_in, i):
    """A stand-in for the UNet: smooth in x, different at every step and element."""
    k = np.arange(x_in.size, dtype=np.float64).reshape(x_in.shape)
    return 0.6 * x_in + 0.2 * np.sin(0.7 * k + i)


def trajectory(name, cfg, steps, seed):
    """Runs the loop; returns timesteps, sigmas, init_noise_sigma, the first model input and the
    samples after steps samples_at (0: the initial latents; then after steps 1, 2, 3 and the
    last), as tools/reference/make_diffusion_scheduler_fixtures.py stores them."""
    s = make(name, cfg)
    s.set_timesteps(steps)
    rng = Rng(seed)
    x = rng.normal(SHAPE) * s.init_noise_sigma
    samples, first_input = [x], None
    for i in range(len(s.timesteps)):
        x_in = s.scale_model_input(x, i)
        if first_input is None:
            first_input = x_in
        x = s.step(toy_model(x_in, i), i, x, rng)
        samples.append(x)
    at = sorted({0, 1, 2, 3, len(samples) - 1} & set(range(len(samples))))
    # img2img's start: x0 and noise drawn from Rng(seed + 1000), noised to step steps // 2.
    fresh = make(name, cfg)
    fresh.set_timesteps(steps)
    r2 = Rng(seed + 1000)
    x0 = r2.normal(SHAPE)
    noised = fresh.add_noise(x0, r2.normal(SHAPE), steps // 2)
    return {
        "noised": noised.ravel().tolist(),
        "timesteps": [float(t) for t in s.timesteps],
        "sigmas": [float(v) for v in s.sigmas],
        "init_noise_sigma": float(s.init_noise_sigma),
        "first_model_input": first_input.ravel().tolist(),
        "samples_at": at,
        "samples": [samples[k].ravel().tolist() for k in at],
    }
