"""AddTerrain: uneven ground, a new random landscape every episode."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from pydantic import field_validator

from simgate.envs.info import unknown_names
from simgate.perturbations.base import (
    EpisodeContext,
    Params,
    Perturbation,
    Sampled,
    draw,
    range_validator,
)

FLAT_START = 0.3  # m: |x| below this is kept level, so the robot does not start on a bump
WAVES = 8  # sinusoids summed per landscape: enough to look irregular, few enough to stay smooth
BASE = 0.1  # m: the height field's thickness below zero; MuJoCo needs it positive


class AddTerrainParams(Params):
    floor: str = "floor"  # the plane geom to replace
    amplitude: Sampled  # m, the highest point of the terrain above the old floor
    roughness: float = 0.5  # m, the typical wavelength of its features
    size: tuple[float, float] = (10.0, 2.0)  # m, half extents along x and y
    resolution: float = 0.02  # m between height samples

    amplitude_ok = range_validator("amplitude")

    @field_validator("roughness", "resolution")
    @classmethod
    def _positive(cls, value, info):
        if not value > 0:
            raise ValueError(f"{info.field_name} should be > 0 m, received {value}")
        return value

    @field_validator("size")
    @classmethod
    def _extent(cls, value):
        if not min(value) > 0:
            raise ValueError(f"size should be [half x, half y] with both > 0 m, received {list(value)}")
        return value


@dataclasses.dataclass(frozen=True)
class Terrain:
    """One episode's ground: ``heights[row, col]`` in metres at ``(x[col], y[row])``."""

    x: np.ndarray
    y: np.ndarray
    heights: np.ndarray
    amplitude: float


class AddTerrain(Perturbation):
    """Replaces the floor plane by a height field of smooth random bumps up to ``amplitude``.

    The landscape is a sum of a few sinusoids with random headings, phases and wavelengths
    around ``roughness``, shifted and scaled so its lowest point is at the old floor's level
    and its highest exactly ``amplitude`` above it. The strip ``|x| <= 0.3`` m (in the floor's
    frame) is kept flat at the old floor level so the robot starts where it would on the plane;
    beyond it the terrain fades in over one ``roughness`` length, so leaving the start zone is a
    climb, not a step. The floor keeps its name, friction and material, so contact rules that
    name it (a fall detector) still apply. Heights are drawn each episode; the height field's
    structure (extent, resolution) is fixed per case. Unlike the plane, the height field is
    finite: beyond ``size`` there is no ground at all.
    """

    kind = "add_terrain"
    stage = "spec"
    Params = AddTerrainParams

    def check(self, info):
        return unknown_names([self.params.floor], info.geoms, "geom", "floor")

    @property
    def hfield_name(self) -> str:
        return f"{self.params.floor}_terrain"

    def grid(self) -> tuple[int, int]:
        """``(nrow, ncol)``: samples along y and along x, both edges included."""
        hx, hy = self.params.size
        return (round(2 * hy / self.params.resolution) + 1, round(2 * hx / self.params.resolution) + 1)

    def _top(self) -> float:
        """The height field's elevation scale: the largest amplitude any episode may draw, so the
        compiled bounding box (used to find contacts) holds every episode's terrain."""
        top = self.params.amplitude[1] if isinstance(self.params.amplitude, tuple) else self.params.amplitude
        return max(top, 1e-6)  # MuJoCo needs a positive scale even for a flat field

    def edit_spec(self, spec) -> None:
        import mujoco

        geom = spec.geom(self.params.floor)
        if geom is None or geom.type != mujoco.mjtGeom.mjGEOM_PLANE:
            what = "no such geom" if geom is None else f"a {geom.type.name.removeprefix('mjGEOM_').lower()}"
            raise ValueError(f"add_terrain replaces a plane, and floor {self.params.floor!r} is {what}")
        nrow, ncol = self.grid()
        hx, hy = self.params.size
        spec.add_hfield(name=self.hfield_name, size=[hx, hy, self._top(), BASE], nrow=nrow, ncol=ncol,
                        userdata=[0.0] * (nrow * ncol))
        geom.type = mujoco.mjtGeom.mjGEOM_HFIELD
        geom.hfieldname = self.hfield_name

    def start(self, ctx: EpisodeContext) -> Terrain:
        import mujoco

        hfield = mujoco.mj_name2id(ctx.model, mujoco.mjtObj.mjOBJ_HFIELD, self.hfield_name)
        nrow, ncol = self.grid()
        hx, hy = self.params.size
        x, y = np.linspace(-hx, hx, ncol), np.linspace(-hy, hy, nrow)
        amplitude = draw(self.params.amplitude, ctx.rng)
        heights = amplitude * self._landscape(ctx.rng, x, y)
        adr = ctx.model.hfield_adr[hfield]
        # MuJoCo multiplies the stored samples by the elevation scale: store heights in units of it
        ctx.model.hfield_data[adr:adr + nrow * ncol] = (heights / self._top()).ravel()
        return Terrain(x, y, heights, amplitude)

    def _landscape(self, rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Heights in [0, 1] on the grid (rows along y), 0 over the start zone, max exactly 1."""
        heading = rng.uniform(0.0, 2.0 * math.pi, WAVES)
        wavelength = self.params.roughness * rng.uniform(0.5, 1.5, WAVES)
        phase = rng.uniform(0.0, 2.0 * math.pi, WAVES)
        weight = rng.uniform(0.5, 1.0, WAVES)
        kx, ky = 2 * math.pi / wavelength * np.cos(heading), 2 * math.pi / wavelength * np.sin(heading)
        h = np.zeros((len(y), len(x)))
        for i in range(WAVES):
            h += weight[i] * np.sin(np.add.outer(ky[i] * y, kx[i] * x + phase[i]))
        h -= h.min()
        h *= self._fade_in(x)[None, :]
        top = h.max()
        return h / top if top > 0 else h

    def _fade_in(self, x: np.ndarray) -> np.ndarray:
        """0 over the start zone, rising smoothly (smoothstep) to 1 one roughness length out."""
        s = np.clip((np.abs(x) - FLAT_START) / self.params.roughness, 0.0, 1.0)
        return s * s * (3.0 - 2.0 * s)
