"""Frames of a replayed episode that show what happened: 640×480, a camera that follows the robot
at a distance set by the robot's own size (not the model's, which includes the floor), a checker
floor and a sky (added to a copy of the env's MjSpec, so motion and foot slip can be seen),
contact points and forces, applied pushes as red arrows, the time, and the end of the episode
marked (a red border and the failure held on screen).

Rendering needs a software OpenGL on a CPU machine (MUJOCO_GL=egl or osmesa; see
:func:`simgate.replay.choose_gl`); :meth:`View.open` returns None where none works."""

from __future__ import annotations

import math
import textwrap

import numpy as np

WIDTH, HEIGHT = 640, 480
#: the robot's largest dimension fills about this share of the frame's height
FILL = 0.55
#: model fields copied from an episode's (perturbed) model, so contacts match what happened
_EPISODE_FIELDS = ("geom_friction", "geom_size", "geom_pos", "geom_quat", "body_mass", "body_pos", "hfield_data",
                   "geom_solref", "geom_solimp")


def visual_model(env, nominal, perturbations=()):
    """The nominal model with a checker floor and a sky, when the env has an MjSpec and the
    result has the nominal's layout; else the nominal itself."""
    import mujoco

    try:
        spec = env.build_spec()
    except Exception:
        spec = None
    if spec is None:
        return nominal
    try:
        for p in perturbations:
            if getattr(p, "stage", None) == "spec":
                p.edit_spec(spec)
        spec.add_texture(name="simgate_checker", type=mujoco.mjtTexture.mjTEXTURE_2D,
                         builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER, rgb1=[0.80, 0.82, 0.85], rgb2=[0.55, 0.58, 0.62],
                         width=256, height=256, mark=mujoco.mjtMark.mjMARK_EDGE, markrgb=[0.95, 0.95, 0.95])
        material = spec.add_material(name="simgate_floor", texrepeat=[4, 4], texuniform=True)  # 0.25 m squares
        material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "simgate_checker"
        spec.add_texture(name="simgate_sky", type=mujoco.mjtTexture.mjTEXTURE_SKYBOX,
                         builtin=mujoco.mjtBuiltin.mjBUILTIN_GRADIENT, rgb1=[0.55, 0.70, 0.88], rgb2=[0.95, 0.97, 1.0],
                         width=64, height=384)
        for geom in spec.geoms:
            if geom.type == mujoco.mjtGeom.mjGEOM_PLANE and not geom.material:
                geom.material = "simgate_floor"
        model = spec.compile()
    except Exception:  # a spec this code cannot decorate: the plain model still renders
        return nominal
    same = all(getattr(model, n) == getattr(nominal, n) for n in ("nq", "nv", "nu", "nbody", "ngeom", "na"))
    return model if same else nominal


def robot_extent(model, data) -> tuple[np.ndarray, float]:
    """Centre and largest dimension of the bounding box of every geom not on the world body."""
    ids = [g for g in range(model.ngeom) if model.geom_bodyid[g] != 0]
    if not ids:
        return np.zeros(3), float(model.stat.extent)
    r = model.geom_rbound[ids][:, None]
    lo, hi = (data.geom_xpos[ids] - r).min(axis=0), (data.geom_xpos[ids] + r).max(axis=0)
    return (lo + hi) / 2, float(max(hi - lo))


def root_body(model) -> int:
    """The body the camera follows: the one with the free joint, else the first body."""
    import mujoco

    free = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]
    return int(model.jnt_bodyid[free[0]]) if free else min(1, model.nbody - 1)


class View:
    def __init__(self, model, renderer, own: bool = True):
        import mujoco

        self.model, self.renderer, self.own = model, renderer, own
        self.data = mujoco.MjData(model)
        self.option = mujoco.MjvOption()
        # pushes are drawn by _push_arrows (MuJoCo's own perturbation arrow starts inside the body)
        for flag in (mujoco.mjtVisFlag.mjVIS_CONTACTPOINT, mujoco.mjtVisFlag.mjVIS_CONTACTFORCE):
            self.option.flags[flag] = True
        self.camera = None
        self.copied = False
        self.count = 0  # frames rendered
        self.pushed: list[int] = []  # indices of frames that show a push
        self.arrow = 0.5

    @classmethod
    def open(cls, env, nominal, perturbations=()) -> View | None:
        try:
            import mujoco

            model = visual_model(env, nominal, perturbations)
            renderer = mujoco.Renderer(model, height=HEIGHT, width=WIDTH)
        except Exception:  # no OpenGL platform library on this machine
            return None
        flags = renderer.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False  # 7x the cost of a frame without a GPU
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = model is not nominal  # only ours: a plain model's is black
        return cls(model, renderer, own=model is not nominal)

    def _frame_camera(self, data) -> None:
        import mujoco

        centre, extent = robot_extent(self.model, self.data)
        body = root_body(self.model)
        camera = mujoco.MjvCamera()
        camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        camera.trackbodyid = body
        camera.lookat[:] = self.data.subtree_com[body]  # tracking keeps the offset it starts with
        fovy = math.radians(float(self.model.vis.global_.fovy))
        camera.distance = max(extent, 0.05) / (2 * FILL * math.tan(fovy / 2))
        quat = self.data.xquat[body]
        heading = math.degrees(math.atan2(2 * (quat[0] * quat[3] + quat[1] * quat[2]), 1 - 2 * (quat[2] ** 2 + quat[3] ** 2)))
        camera.azimuth, camera.elevation = heading + 120.0, -22.0  # three-quarter view from the robot's right rear
        self.camera = camera
        self.arrow = 0.6 * extent
        # contact forces drawn at a length proportional to the robot's weight share
        if self.own:  # never edit the engine's own model (its bytes may key the episode cache)
            weight = float(sum(self.model.body_mass)) * float(np.linalg.norm(self.model.opt.gravity)) or 1.0
            self.model.vis.map.force = 0.5 * extent / weight

    def _sync(self, model, data) -> None:
        import mujoco

        if not self.copied and model is not self.model:
            for name in _EPISODE_FIELDS:
                mine, theirs = getattr(self.model, name, None), getattr(model, name, None)
                if mine is not None and theirs is not None and np.shape(mine) == np.shape(theirs):
                    mine[...] = theirs
            self.copied = True
        d = self.data
        d.time = data.time
        d.qpos[:], d.qvel[:], d.ctrl[:] = data.qpos, data.qvel, data.ctrl
        if self.model.na:
            d.act[:] = data.act
        d.xfrc_applied[:] = data.xfrc_applied
        mujoco.mj_forward(self.model, d)

    def frame(self, model, data, time: float | None = None) -> np.ndarray:
        """The frame of ``data``; ``time``: seconds since the episode started (default data.time)."""
        self._sync(model, data)
        if self.camera is None:
            self._frame_camera(data)
        self.renderer.update_scene(self.data, camera=self.camera, scene_option=self.option)
        pushes = self._push_arrows()
        if pushes:
            self.pushed.append(self.count)
        self.count += 1
        image = self.renderer.render().copy()
        now = self.data.time if time is None else time
        return _text(image, [f"t = {now:5.2f} s"] + pushes, (12, 10))

    def _push_arrows(self) -> list[str]:
        """A red arrow towards the centre of mass of every body pushed through xfrc_applied."""
        import mujoco

        scene, labels = self.renderer.scene, []
        for body in range(1, self.model.nbody):
            force = np.array(self.data.xfrc_applied[body, :3])
            size = float(np.linalg.norm(force))
            if size < 1e-9 or scene.ngeom >= scene.maxgeom:
                continue
            # the head stops at the body's surface (its bounding radius), not hidden at its centre
            geoms = np.nonzero(self.model.geom_bodyid == body)[0]
            radius = float(self.model.geom_rbound[geoms].max()) if len(geoms) else 0.0
            tip = np.array(self.data.xipos[body]) - force / size * radius
            tail = tip - force / size * self.arrow
            geom = scene.geoms[scene.ngeom]
            mujoco.mjv_initGeom(geom, mujoco.mjtGeom.mjGEOM_ARROW, np.zeros(3), np.zeros(3), np.zeros(9),
                                np.array([0.9, 0.1, 0.1, 1.0], dtype=np.float32))
            mujoco.mjv_connector(geom, mujoco.mjtGeom.mjGEOM_ARROW, 0.06 * self.arrow, tail, tip)
            scene.ngeom += 1
            labels.append(f"push {size:.0f} N on {mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_BODY, body)}")
        return labels

    def robot_rows(self, model, data) -> tuple[int, int]:
        """First and last image row showing the robot (segmentation render of the same view)."""
        import mujoco

        self._sync(model, data)
        if self.camera is None:
            self._frame_camera(data)
        self.renderer.enable_segmentation_rendering()
        try:
            self.renderer.update_scene(self.data, camera=self.camera, scene_option=self.option)
            seg = self.renderer.render()
        finally:
            self.renderer.disable_segmentation_rendering()
        ids, types = seg[..., 0], seg[..., 1]
        geom = types == mujoco.mjtObj.mjOBJ_GEOM
        robot = geom & (ids >= 0) & np.isin(ids, np.nonzero(self.model.geom_bodyid != 0)[0])
        rows = np.nonzero(robot.any(axis=1))[0]
        return (int(rows[0]), int(rows[-1])) if len(rows) else (0, -1)

    def close(self) -> None:
        self.renderer.close()


def _text(image: np.ndarray, lines: list[str], where: tuple[int, int], colour=(255, 255, 255), size: int = 18,
          background=(0, 0, 0)) -> np.ndarray:
    """Lines of text drawn onto a frame (Pillow, which matplotlib brings; without it, none)."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        return image
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one small bitmap font
        font = ImageFont.load_default()
    x, y = where
    for line in lines:
        box = draw.textbbox((x, y), line, font=font)
        draw.rectangle((box[0] - 4, box[1] - 3, box[2] + 4, box[3] + 3), fill=background)
        draw.text((x, y), line, fill=colour, font=font)
        y = box[3] + 8
    return np.asarray(picture)


def mark_end(frames: list[np.ndarray], ended: float, success: bool, terminated: str | None, mode: str | None,
             fps: int, hold: float = 2.0, detail: str | None = None) -> list[np.ndarray]:
    """The last frame held for ``hold`` seconds with what ended the episode: a red border and
    'FELL at t = 2.98 s (primary failure mode: saturated)' on a failure. ``detail``: a second
    line, what the episode's end says of itself (a hard limit: which limit, its value, the step:
    the episode ends at the control step the limit was exceeded, so this frame is that step)."""
    last = frames[-1].copy()
    if success:
        text, colour = f"SUCCESS (episode ended at t = {ended:.2f} s)", (30, 130, 70)
    else:
        what = (terminated or "not achieved at the horizon").upper()
        text = f"{what} at t = {ended:.2f} s" + (f" (primary failure mode: {mode})" if mode else "")
        colour = (200, 30, 30)
    lines = [text] + (textwrap.wrap(detail, 52) if detail and not success else [])  # 52: what fits 640 px at 22 px
    border = 10
    last[:border], last[-border:], last[:, :border], last[:, -border:] = colour, colour, colour, colour
    bottom = HEIGHT if last.shape[0] == HEIGHT else last.shape[0]
    last = _text(last, lines, (20, bottom - 48 - 34 * (len(lines) - 1)), size=22, background=colour)
    return frames + [last] * max(1, int(round(hold * fps)))


def still(frames: list[np.ndarray], pushed: list[int]) -> np.ndarray:
    """The marked end, beside the middle of the last push before it when there was one: what a
    reader should see without playing the video."""
    end = frames[-1]
    if not pushed:
        return end
    last = pushed[-1]
    first = last
    while first - 1 in pushed:  # back to where that push began
        first -= 1
    shown = frames[(first + last) // 2]
    gap = np.full((end.shape[0], 12, 3), 255, dtype=end.dtype)
    return np.concatenate([shown, gap, end], axis=1)
