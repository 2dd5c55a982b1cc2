"""The Lublin-Feitelson workload model (rigid parallel jobs), seedable.

Uri Lublin and Dror G. Feitelson, "The workload on parallel supercomputers:
modeling the characteristics of rigid jobs", JPDC 63(11), 2003 - the model
most scheduling papers replay when they need a synthetic workload. Why a
published model rather than our own: its distributions were fitted to real
machines (the Parallel Workloads Archive), so the figures the simulator prints
can be compared with the literature.

The model, with the paper's fitted parameters for batch and interactive jobs:

* **size** - serial with probability ``serial_prob``; otherwise ``2**u`` with
  ``u`` from a two-stage uniform on ``[low, med]`` (probability ``uprob``) or
  ``[med, high]``, rounded to a power of two with probability ``pow2_prob``.
  ``high`` is ``log2`` of the machine size, ``med = high - 2.5`` (the paper's
  range is ``[high - 3.5, high - 1.5]``), so the model scales to any machine.
* **run time** - ``ln(runtime)`` is hyper-gamma: ``Gamma(a1, b1)`` with
  probability ``p = pa * size + pb`` (clamped to [0, 1]), else
  ``Gamma(a2, b2)``; larger jobs run longer. Capped at ``e**12`` s (~2 days).
* **arrivals** - ``ln(inter-arrival)`` is ``Gamma(aarr * arar, barr)`` at rush
  hours, stretched over the day by a daily cycle: 48 half-hour buckets weighted
  by the increments of ``GammaCDF(anum, bnum)`` (the day starting at 11:00
  cyclically), normalised to mean 1. Batch and interactive jobs arrive as two
  interleaved streams; each job takes the type of the stream that arrives first.

Not part of the model, added because a scheduler needs them and documented as
ours: **user estimates** (the requested time is the run time times a uniform
factor in [1, 4], rounded up to a familiar limit - what makes backfill
imprecise, as in real traces), **users** (Zipf-like: a few users submit most
jobs, which is what fairshare is for) and an optional **load** target (the
inter-arrival times are scaled so the offered load - work over machine capacity
during the arrival span - equals ``load``; the model's own arrival rate fits a
128-processor machine of the 1990s).
"""

import math
import random

from .swf import SwfJob

BUCKETS = 48                              # half-hour buckets in a day
SECONDS_IN_BUCKET = 86400 // BUCKETS
CYCLIC_DAY_START = 11                     # the fitted day starts at 11:00
TOO_MUCH_TIME = 12.0                      # ln(max run time): ~45 hours
TOO_MUCH_ARRIVE_TIME = 13.0               # ln(max inter-arrival): ~5 days
BATCH, INTERACTIVE = "batch", "interactive"

#: The paper's fitted parameters, per job type.
PARAMETERS = {
    BATCH: dict(serial_prob=0.2927, pow2_prob=0.6686, ulow=1.2, uprob=0.875,
                a1=6.57, b1=0.823, a2=639.1, b2=0.0156, pa=-0.003, pb=0.6986,
                aarr=6.0415, barr=0.8531, anum=6.1271, bnum=5.2740, arar=1.0519),
    INTERACTIVE: dict(serial_prob=0.1541, pow2_prob=0.625, ulow=1.0, uprob=0.705,
                      a1=3.8351, b1=0.6605, a2=7.073, b2=0.6856, pa=-0.0118, pb=0.9156,
                      aarr=6.5510, barr=0.6621, anum=8.9186, bnum=3.6680, arar=0.9797),
}
#: Familiar --time values (s) that users round their estimates up to.
FAMILIAR_LIMITS = (300, 600, 900, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 172800)


def gamma_cdf(x, alpha, beta):
    """P(X <= x) for X ~ Gamma(shape ``alpha``, scale ``beta``): the regularised lower gamma.

    Series expansion below ``alpha + 1``, Lentz's continued fraction above, as in
    Numerical Recipes; used only to weight the 48 buckets of the daily cycle.
    """
    if x <= 0:
        return 0.0
    x /= beta
    log_front = -x + alpha * math.log(x) - math.lgamma(alpha)
    if x < alpha + 1:
        term = total = 1.0 / alpha
        a = alpha
        for _ in range(1000):
            a += 1
            term *= x / a
            total += term
            if abs(term) < abs(total) * 1e-12:
                break
        return total * math.exp(log_front)
    tiny = 1e-300
    b = x + 1 - alpha
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - alpha)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-12:
            break
    return 1.0 - math.exp(log_front) * h


def daily_weights(anum, bnum):
    """The 48 bucket weights (mean 1): the share of a day's arrivals in each half hour."""
    weights = [0.0] * BUCKETS
    for i in range(CYCLIC_DAY_START, BUCKETS + CYCLIC_DAY_START):
        weights[(i - 1) % BUCKETS] = gamma_cdf(i + 0.5, anum, bnum) - gamma_cdf(i - 0.5, anum, bnum)
    mean = sum(weights) / BUCKETS
    return [w / mean for w in weights]


class _ArrivalStream:
    """One job type's arrival process: rush-hour gaps paid for bucket by bucket.

    A gap drawn for the rush hour is converted into "points"; quiet buckets
    (small weight) cost few points per second, so the same gap stretches over
    more wall-clock time at night - the model's daily cycle.
    """

    def __init__(self, rng, p):
        self.rng = rng
        self.shape, self.scale = p["aarr"] * p["arar"], p["barr"]
        self.weights = daily_weights(p["anum"], p["bnum"])
        self.bucket = 0          # the simulation starts at midnight
        self.points = self.remainder = 0.0
        self.time = 0.0
        self.advance()

    def advance(self):
        """Move ``time`` to this stream's next arrival."""
        while True:
            gap = self.rng.gammavariate(self.shape, self.scale)
            if gap <= TOO_MUCH_ARRIVE_TIME:
                break
        self.points += math.exp(gap) / SECONDS_IN_BUCKET
        elapsed = 0.0
        while self.points > self.weights[self.bucket]:
            self.points -= self.weights[self.bucket]
            self.bucket = (self.bucket + 1) % BUCKETS
            elapsed += SECONDS_IN_BUCKET
        remainder = self.points / self.weights[self.bucket]
        elapsed += SECONDS_IN_BUCKET * (remainder - self.remainder)
        self.remainder = remainder
        self.time += elapsed


def job_size(rng, p, high):
    """Processors for one job of type parameters ``p`` on a machine of ``2**high``."""
    u = rng.random()
    if u <= p["serial_prob"]:
        return 1
    med = max(p["ulow"], high - 2.5)
    if rng.random() <= p["uprob"]:
        exponent = rng.uniform(p["ulow"], med)
    else:
        exponent = rng.uniform(med, high)
    if u <= p["serial_prob"] + p["pow2_prob"]:
        exponent = round(exponent)
    return max(1, int(2 ** exponent + 0.5))


def run_time(rng, p, size):
    """Seconds of run time for a job of ``size`` processors (hyper-gamma on its logarithm)."""
    first = min(1.0, max(0.0, p["pa"] * size + p["pb"]))
    while True:
        if rng.random() <= first:
            value = rng.gammavariate(p["a1"], p["b1"])
        else:
            value = rng.gammavariate(p["a2"], p["b2"])
        if value <= TOO_MUCH_TIME:
            return max(1, int(math.exp(value)))


def requested_time(rng, runtime):
    """The user's --time: an overestimate rounded up to a familiar limit (ours, not the model's)."""
    want = runtime * rng.uniform(1.0, 4.0)
    return next((limit for limit in FAMILIAR_LIMITS if limit >= want), FAMILIAR_LIMITS[-1])


def generate(n_jobs, *, procs, seed=1, load=None, users=32, interactive=True):
    """``n_jobs`` :class:`SwfJob` records for a machine of ``procs`` processors.

    ``seed`` makes the workload reproducible; ``load`` (0-1, optional) rescales
    arrivals to that offered load; ``interactive=False`` keeps the batch stream
    only. SWF queue number 1 marks batch jobs and 0 interactive ones, as the
    model's own SWF output does.
    """
    if n_jobs < 0 or procs < 1:
        raise ValueError("n_jobs must be >= 0 and procs >= 1")
    rng = random.Random(seed)
    high = math.log2(procs)
    streams = {BATCH: _ArrivalStream(rng, PARAMETERS[BATCH])}
    if interactive:
        streams[INTERACTIVE] = _ArrivalStream(rng, PARAMETERS[INTERACTIVE])
    user_weights = [1 / (i + 1) for i in range(users)]
    raw = []
    for _ in range(n_jobs):
        kind = min(streams, key=lambda k: streams[k].time)
        arrival = streams[kind].time
        streams[kind].advance()
        p = PARAMETERS[kind]
        size = min(procs, job_size(rng, p, high))
        runtime = run_time(rng, p, size)
        limit = requested_time(rng, runtime)
        user = rng.choices(range(1, users + 1), weights=user_weights)[0]
        raw.append((arrival, size, runtime, limit, user, 1 if kind == BATCH else 0))
    scale = 1.0
    if load and raw:
        span = raw[-1][0] - raw[0][0]
        work = sum(size * runtime for _, size, runtime, *_ in raw)
        if span > 0:
            scale = work / (load * procs) / span
    return [SwfJob(i, int(arrival * scale), None, runtime, size, None, None, size, limit, None, 1, user, 1,
                   None, queue, 1, None, None)
            for i, (arrival, size, runtime, limit, user, queue) in enumerate(raw, 1)]
