"""Regional smoke haze from peat fires: visibility per district, and what sensors see of it.

Kotawaringin Timur lies in Central Kalimantan's peat-fire belt. In the fire seasons of 1997,
2015, 2019 and 2023 smoke covered whole regencies for weeks; visibility fell below 300 m,
at times to tens of metres, usually worst in the morning, until the rains came. This module
makes that haze, so that the rule engine can be tested against it. The physics of light and
particles (Koschmieder, obscuration, PM2.5) is `contract.optics`, shared with the engine.

**The field.** Outdoor extinction (1/m) in district `d` at model time `t`:

    b(d, t) = b_clear + sum over haze episodes of  b_peak * I_d * E * D * W * P_d * R_d

- `b_clear` = extinction of a clear day (20 km); `b_peak` = extinction_per_m(peak
  visibility) - b_clear, scaled (once, by sampling the episode) so that the worst moment
  of any district, before the run's end, is exactly the peak visibility.
- `I_d`: the district's intensity, 1.0 for one district (a seeded pick), uniform in
  `weakest..1` for the others: the same regional episode, not the same everywhere.
- `E`: the build-up, a smoothstep from 0 to 1 over `build` (hours to days), reaching each
  district `shift_d` later (uniform in 0..`shift`): every district is clear at `at`.
- `D`: the daily cycle, from the haze clock's local time (WIB): 1 at 07:00 (a shallow,
  humid morning boundary layer holds the smoke; 06:00..09:00 stays above 0.85), falling to
  `afternoon` (0.25) at 15:00 when the mixing layer is deepest, rising again through the
  night. Two half-cosines, like the ambient temperature of models.py.
- `W`: regional weather, common to all districts: 1 - `variability` * (1 - cos)/2 with a
  2.7-day period and a seeded phase (some days are clearer than others).
- `P_d`: puffs per district: 1 - 0.1 * u with u in 0..1 from two sinusoids (2.9 h, 6.7 h).
  `W` and `P_d` are at most 1; the scaling of `b_peak` makes up for what they take away.
- `R_d`: rain. A `rain` event at model time t_r washes the haze out over `over` (1 h of the
  haze clock by default, a half-cosine down to exactly 0), reaching each district with its
  shift. Rain before an episode starts does not touch it.

**Time compression.** Readings advance in model time `t` (the scenario clock: events,
fires, reading timestamps with `event_time = "model"`), so rules with windows of seconds
and minutes (pre-alarm, confirmation, offline) behave as in reality. The haze has its own
clock, `tau = (t - at) * compression` seconds since the episode began: with compression
168 a week of haze passes in an hour of model time, one simulated day every 8.6 minutes,
with the same shape (build-up over days, morning peaks, rain). Durations that shape the
haze (`build`, `shift`, a rain's `over`) are haze-clock time; when things happen (`at` of
the haze and of the rain) is model time, as for every event. The ambient temperature and
humidity cycles of models.py stay on the model clock; dust drift (scenario `drift`) has a
compression of its own.

**Indoors.** Each building lets in a share of the outdoor haze, its infiltration factor,
drawn once per building from the seed: `leaky_share` (20 %) of the buildings in 0.8..1.0
(open markets, houses on stilts with vents), the rest in 0.1..0.8. A detector's chamber
sees `obscuration_pct_m(k * b_haze * (1 + noise))` on top of its clean-air reading
(noise: Gaussian, 4 %, clipped at 3 sigma, so never negative). Scaling the extinction
rather than the obscuration is what concentration does; at these levels the two agree
within 0.3 %/m. Indoor air is taken to follow outdoor air without lag (an exchange rate of
about one per hour is short against the haze's hours).

**Air stations** see the outdoor extinction as PM2.5 through `contract.optics`
(`pm25_ugm3`, 8 m^2/g), with PM10 and CO following it (models.air_reading), so a station's
PM2.5 and a detector with infiltration 1.0 describe the same visibility. At 50 m that is
about 9,800 ug/m3 of PM2.5: an upper bound of what Palangka Raya measured in 2015 (hourly
PM10 up to 3,760 ug/m3), and "berbahaya" on the ISPU scale by any averaging.

Everything here is a pure function of model time and seeded traits: no clock, no I/O.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from contract.ispu import category, pm25_index
from contract.optics import CLEAR_VISIBILITY_M, extinction_per_m, obscuration_pct_m, visibility_m

SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86400.0

CLEAR_EXTINCTION = extinction_per_m(CLEAR_VISIBILITY_M)

# The daily cycle of the haze: worst at 07:00 WIB, clearest at 15:00.
HAZE_PEAK_HOUR = 7.0
HAZE_CLEAREST_HOUR = 15.0
AFTERNOON_FRACTION = 0.25
# Regional weather: some days clearer than others.
WEATHER_PERIOD_S = 2.7 * SECONDS_PER_DAY
VARIABILITY = 0.3
# Puffs of denser smoke per district (haze-clock periods), and how much they thin it.
PUFF_PERIODS_S = (2.9 * SECONDS_PER_HOUR, 6.7 * SECONDS_PER_HOUR)
PUFF_AMPLITUDE = 0.1
# Per reading: relative noise of what a detector's chamber sees of the haze.
INDOOR_NOISE = 0.04
# Infiltration: the share of outdoor haze a building lets in.
INFILTRATION_RANGE = (0.1, 1.0)
LEAKY_FROM = 0.8
LEAKY_SHARE = 0.2
# Haze mornings are humid ones: relative humidity up by this much at full haze.
HAZE_HUMIDITY_PCT = 5.0


def ispu_category(pm25_24h_ugm3: float) -> str:
    """ISPU category id (baik ... berbahaya) of a 24-hour mean PM2.5, by contract.ispu."""
    return category(pm25_index(pm25_24h_ugm3)).id.value


def smoothstep(x: float) -> float:
    """0 below 0, 1 above 1, 3x^2 - 2x^3 between (no kink at either end)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    return x * x * (3.0 - 2.0 * x)


def daily_factor(hour: float, afternoon: float = AFTERNOON_FRACTION) -> float:
    """Share of the day's worst haze at this local hour: 1 at 07:00, `afternoon` at 15:00."""
    rise_h = 24.0 - (HAZE_CLEAREST_HOUR - HAZE_PEAK_HOUR)  # 15:00 -> 07:00, through the night
    since = (hour - HAZE_CLEAREST_HOUR) % 24.0
    if since <= rise_h:
        g = 0.5 - 0.5 * math.cos(math.pi * since / rise_h)
    else:
        g = 0.5 + 0.5 * math.cos(math.pi * (since - rise_h) / (24.0 - rise_h))
    return afternoon + (1.0 - afternoon) * g


def _wash(elapsed_s: float, over_s: float) -> float:
    """Share of the haze left `elapsed_s` after rain began: 1 -> 0 over `over_s` (half-cosine)."""
    if elapsed_s <= 0.0:
        return 1.0
    if over_s <= 0.0 or elapsed_s >= over_s:
        return 0.0
    return 0.5 + 0.5 * math.cos(math.pi * elapsed_s / over_s)


@dataclass(frozen=True, slots=True)
class DistrictHaze:
    """How one district takes part in an episode."""

    name: str
    intensity: float  # share of the episode's peak extinction (the worst district: 1)
    shift_s: float  # haze-clock seconds the episode (and its rain) reaches it late
    puff_phases: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Rain:
    """Rain from model time `t`, washing the haze out over `over_s` haze-clock seconds."""

    t: float
    over_s: float
    districts: frozenset[str] | None = None  # None: every district


@dataclass(frozen=True)
class HazeEpisode:
    """One regional haze: where, how strong, its own (compressed) clock, and the rain."""

    t0: float  # model time it begins
    districts: Mapping[str, DistrictHaze]
    compression: float = 1.0
    start_hour: float = 0.0  # local time (WIB) of the haze clock at t0
    build_s: float = 2 * SECONDS_PER_DAY
    peak_visibility_m: float = 50.0
    afternoon: float = AFTERNOON_FRACTION
    variability: float = VARIABILITY
    weather_phase: float = 0.0
    rains: tuple[Rain, ...] = ()
    label: str | None = None
    # Makes the worst moment (weather and puffs included) exactly the peak visibility; set by
    # make_episode, which looks for that moment.
    scale: float = 1.0

    @property
    def peak_extinction(self) -> float:
        """Extinction (1/m) of the haze alone at its worst moment in the worst district."""
        return max(extinction_per_m(self.peak_visibility_m) - CLEAR_EXTINCTION, 0.0)

    def clock_s(self, t: float) -> float:
        """Haze-clock seconds since the episode began, at model time `t`."""
        return (t - self.t0) * self.compression

    def model_time(self, clock_s: float) -> float:
        """Model time at which the haze clock shows `clock_s`."""
        return self.t0 + clock_s / self.compression

    def local_hour(self, t: float) -> float:
        """The haze clock's local hour (WIB) at model time `t`."""
        return (self.start_hour + self.clock_s(t) / SECONDS_PER_HOUR) % 24.0

    def extinction(self, district: str, t: float) -> float:
        """Noise-free extinction (1/m) this episode adds in `district` at model time `t`."""
        where = self.districts.get(district)
        if where is None or t < self.t0:
            return 0.0
        tau = self.clock_s(t)
        arrived = tau - where.shift_s
        if arrived <= 0.0:
            return 0.0
        build = smoothstep(arrived / self.build_s) if self.build_s > 0 else 1.0
        rain = 1.0
        for r in self.rains:
            if r.districts is None or district in r.districts:
                rain *= _wash(arrived - self.clock_s(r.t), r.over_s)
        if rain == 0.0:
            return 0.0
        hour = (self.start_hour + tau / SECONDS_PER_HOUR) % 24.0
        weather = 1.0 - self.variability * 0.5 * (
            1.0 - math.cos(2.0 * math.pi * tau / WEATHER_PERIOD_S + self.weather_phase)
        )
        waves = sum(
            math.sin(2.0 * math.pi * tau / period + phase)
            for period, phase in zip(PUFF_PERIODS_S, where.puff_phases, strict=True)
        )
        puffs = 1.0 - PUFF_AMPLITUDE * (0.5 + 0.5 * waves / len(PUFF_PERIODS_S))
        return (
            self.peak_extinction
            * self.scale
            * where.intensity
            * build
            * daily_factor(hour, self.afternoon)
            * weather
            * puffs
            * rain
        )


def make_episode(
    t0: float,
    districts: Sequence[str],
    seed: int | str,
    *,
    compression: float = 1.0,
    start_hour: float = 0.0,
    build_s: float = 2 * SECONDS_PER_DAY,
    peak_visibility_m: float = 50.0,
    afternoon: float = AFTERNOON_FRACTION,
    weakest: float = 0.6,
    shift_s: float = 2 * SECONDS_PER_HOUR,
    variability: float = VARIABILITY,
    rains: Iterable[Rain] = (),
    label: str | None = None,
    until: float | None = None,
) -> HazeEpisode:
    """An episode over `districts` with seeded intensities, shifts and phases.

    Scaled so that the worst moment of any district (before model time `until`, if given)
    has exactly `peak_visibility_m`.
    """
    if compression <= 0:
        raise ValueError("compression must be positive")
    if not districts:
        raise ValueError("a haze needs at least one district")
    rng = random.Random(f"sigap-haze:{seed}")
    names = sorted(set(districts))
    worst = rng.choice(names)
    by_name: dict[str, DistrictHaze] = {}
    for name in names:
        intensity = 1.0 if name == worst else rng.uniform(weakest, 1.0)
        shift = rng.uniform(0.0, shift_s)
        phases = tuple(rng.uniform(0.0, 2.0 * math.pi) for _ in PUFF_PERIODS_S)
        by_name[name] = DistrictHaze(name, intensity, shift, phases)
    episode = HazeEpisode(
        t0=t0,
        districts=by_name,
        compression=compression,
        start_hour=start_hour,
        build_s=build_s,
        peak_visibility_m=peak_visibility_m,
        afternoon=afternoon,
        variability=variability,
        weather_phase=rng.uniform(0.0, 2.0 * math.pi),
        rains=tuple(r for r in rains if r.t >= t0),
        label=label,
    )
    return replace(episode, scale=1.0 / _worst_share(episode, until))


def _worst_share(episode: HazeEpisode, until: float | None) -> float:
    """The highest haze of any district, as a share of the nominal peak (weather, puffs...).

    Sampled from the start to a week past the build-up (at most 60 days; at most `until`),
    every 5 haze-clock minutes or finer for a short run: the worst moment found is within
    about 1 % of the true one. Done once per scenario.
    """
    end_s = min(episode.build_s + 7 * SECONDS_PER_DAY, 60 * SECONDS_PER_DAY)
    if until is not None and until > episode.t0:
        end_s = min(end_s, episode.clock_s(until))
    step_s = min(300.0, end_s / 720.0)
    best = 0.0
    for k in range(1, int(end_s / step_s) + 1) if step_s > 0 else ():
        t = episode.model_time(k * step_s)
        best = max(best, *(episode.extinction(name, t) for name in episode.districts))
    peak = episode.peak_extinction
    return best / peak if best > 0 and peak > 0 else 1.0


def draw_infiltration(
    buildings: Iterable[str],
    seed: int | str,
    leaky_share: float = LEAKY_SHARE,
    overrides: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Infiltration factor per building: exactly round(share * n) of them in 0.8..1.0.

    The rest are in 0.1..0.8. Drawn from the seed and the sorted building keys, so the same
    fleet always gets the same factors; `overrides` (building -> factor) win.
    """
    if not 0.0 <= leaky_share <= 1.0:
        raise ValueError("leaky_share must be within 0..1")
    keys = sorted(set(buildings))
    rng = random.Random(f"sigap-haze-infiltration:{seed}")
    leaky = set(rng.sample(keys, round(leaky_share * len(keys))))
    low, high = INFILTRATION_RANGE
    factors = {
        # Rounded to 3 digits; a tight building never rounds up into the leaky class.
        key: round(rng.uniform(LEAKY_FROM, high), 3)
        if key in leaky
        else min(round(rng.uniform(low, LEAKY_FROM), 3), LEAKY_FROM - 0.001)
        for key in keys
    }
    for key, value in (overrides or {}).items():
        if not low <= value <= high:
            raise ValueError(f"infiltration of {key} must be within {low}..{high}, not {value}")
        factors[key] = value
    return factors


class HazeField:
    """Every haze episode of a scenario, and how much of it each detector's building lets in.

    Lookups are per reading: `extinction` remembers the districts' values at the last model
    time asked (a publisher batch shares one), so most readings cost a dict lookup.
    """

    def __init__(self, episodes: Sequence[HazeEpisode], infiltration: Mapping[str, float]) -> None:
        self.episodes = tuple(episodes)
        # Device id -> its building's infiltration factor (fire detectors).
        self.infiltration = dict(infiltration)
        self._cache_t = math.nan
        self._cache: dict[str, float] = {}

    @property
    def districts(self) -> frozenset[str]:
        """Districts any episode covers."""
        return frozenset(name for e in self.episodes for name in e.districts)

    def extinction(self, district: str, t: float) -> float:
        """Noise-free outdoor extinction (1/m) of the haze alone (no clear-air part)."""
        if t != self._cache_t:
            self._cache_t = t
            self._cache = {}
        value = self._cache.get(district)
        if value is None:
            value = sum(e.extinction(district, t) for e in self.episodes)
            self._cache[district] = value
        return value

    def outdoor_extinction(self, district: str, t: float) -> float:
        """Noise-free outdoor extinction (1/m): clear air plus haze."""
        return CLEAR_EXTINCTION + self.extinction(district, t)

    def visibility_m(self, district: str, t: float) -> float:
        """Noise-free outdoor visibility (m), Koschmieder."""
        return visibility_m(self.outdoor_extinction(district, t))

    def outdoor_obscuration_pct_m(self, district: str, t: float) -> float:
        """What a detector standing outdoors would read of the haze (%/m), noise-free."""
        return obscuration_pct_m(self.extinction(district, t))

    def indoor_extinction(self, device_id: str, district: str, t: float) -> float:
        """Noise-free haze extinction (1/m) inside a detector's building."""
        factor = self.infiltration.get(device_id)
        if factor is None:
            return 0.0
        return factor * self.extinction(district, t)

    def humidity_add_pct(self, district: str, t: float) -> float:
        """Extra relative humidity of a hazy (hence humid) morning, up to 5 %."""
        share = 0.0
        for e in self.episodes:
            peak = e.peak_extinction
            if peak > 0:
                share += e.extinction(district, t) / peak
        return HAZE_HUMIDITY_PCT * min(share, 1.0)
