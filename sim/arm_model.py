"""The simulated arm's model: the xArm6 from pybullet_data with a parallel-jaw gripper of our own.

The stock xArm gripper is a linkage closed by mimic joints, which PyBullet does not honour. Instead
we append two prismatic fingers to the xArm6 flange in one URDF (so the gripper is part of the
multibody, not welded on) and couple them with a gear constraint at load time. Grasps then hold by
contact and friction alone.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pybullet_data

from erarm.robots.errors import ConfigError
from erarm.robots.targets import MarkerSpec

ARM_URDF = "xarm/xarm6_robot_white.urdf"  # the xArm6 kinematics in the real arm's white finish
ARM_JOINTS = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6")
FINGER_JOINTS = ("left_finger_joint", "right_finger_joint")
TCP_LINK = "tcp"

PALM_HEIGHT_M = 0.03
FINGER_LENGTH_M = 0.06
FINGER_THICKNESS_M = 0.012
FINGER_WIDTH_M = 0.022
FINGER_TRAVEL_M = 0.045  # each finger; the jaws open to twice this
TCP_OFFSET_M = PALM_HEIGHT_M + FINGER_LENGTH_M  # flange to fingertips
MARKER_LINK = "marker"
# An ArUco marker on a bracket, facing the tool's +x side (the camera, when yaw is 0), its centre
# 60 mm out and 20 mm above the flange: in the TCP frame that is z = -0.02 - TCP_OFFSET_M.
MARKER = MarkerSpec(marker_id=7, size_m=0.05, offset_m=(0.06, 0.0, -0.02 - TCP_OFFSET_M))
MARKER_MARGIN = 0.2  # white quiet zone around the code, as a share of its size


def _box_link(name: str, size: tuple[float, float, float], xyz: tuple[float, float, float],
              mass: float, rgba: str) -> str:
    size_s = " ".join(f"{v:g}" for v in size)
    xyz_s = " ".join(f"{v:g}" for v in xyz)
    inertia = mass * (size[0] ** 2 + size[1] ** 2 + size[2] ** 2) / 12
    return f"""
<link name="{name}">
  <inertial><origin xyz="{xyz_s}"/><mass value="{mass:g}"/>
    <inertia ixx="{inertia:g}" iyy="{inertia:g}" izz="{inertia:g}" ixy="0" ixz="0" iyz="0"/>
  </inertial>
  <visual><origin xyz="{xyz_s}"/><geometry><box size="{size_s}"/></geometry>
    <material name="{name}_material"><color rgba="{rgba}"/></material></visual>
  <collision><origin xyz="{xyz_s}"/><geometry><box size="{size_s}"/></geometry></collision>
</link>"""


def _marker_obj() -> str:
    """The marker plate as a textured quad in the palm's frame, facing +x (ArUco corner order
    TL, TR, BR, BL with texture v running bottom-up as PyBullet reads it)."""
    centre = np.add(MARKER.offset_m, (0.0, 0.0, TCP_OFFSET_M))
    half = MARKER.size_m * (1 + 2 * MARKER_MARGIN) / 2
    right, down = np.array([0.0, -1.0, 0.0]), np.array([0.0, 0.0, 1.0])  # marker x and y
    corners = [centre - right * half - down * half, centre + right * half - down * half,
               centre + right * half + down * half, centre - right * half + down * half]
    lines = [f"v {c[0]:.6f} {c[1]:.6f} {c[2]:.6f}" for c in corners]
    lines += ["vt 0 1", "vt 1 1", "vt 1 0", "vt 0 0", "vn 1 0 0"]
    lines += ["f 1/1/1 4/4/1 3/3/1", "f 1/1/1 3/3/1 2/2/1"]  # counter-clockwise from +x
    return "\n".join(lines) + "\n"


def marker_texture() -> np.ndarray:
    """The marker's printed face: the code with its quiet zone, pre-filtered like optics."""
    code = MARKER.image(pixels=210)
    border = round(210 * MARKER_MARGIN)
    plate = cv2.copyMakeBorder(code, border, border, border, border, cv2.BORDER_CONSTANT,
                               value=255)
    return cv2.GaussianBlur(plate, (0, 0), 1.0)


def _gripper_xml(marker_mesh: str) -> str:
    finger = (FINGER_WIDTH_M, FINGER_THICKNESS_M, FINGER_LENGTH_M)
    half_t, half_l = FINGER_THICKNESS_M / 2, FINGER_LENGTH_M / 2
    dark = "0.15 0.15 0.17 1"
    joints = ""
    for side, sign in (("left", 1), ("right", -1)):
        joints += _box_link(f"{side}_finger", finger, (0, sign * half_t, half_l), 0.03, dark)
        # q = gap between this finger's pad and the gripper's centre plane
        joints += f"""
<joint name="{side}_finger_joint" type="prismatic">
  <parent link="palm"/><child link="{side}_finger"/>
  <origin xyz="0 0 {PALM_HEIGHT_M:g}"/><axis xyz="0 {sign} 0"/>
  <limit lower="0" upper="{FINGER_TRAVEL_M:g}" effort="40" velocity="0.25"/>
</joint>"""
    palm = _box_link("palm", (0.045, 0.125, PALM_HEIGHT_M), (0, 0, PALM_HEIGHT_M / 2), 0.25, dark)
    return f"""<gripper>{palm}
<joint name="palm_mount" type="fixed"><parent link="link6"/><child link="palm"/>
  <origin xyz="0 0 0"/></joint>
{joints}
<link name="{TCP_LINK}"><inertial><mass value="0.001"/>
  <inertia ixx="1e-8" iyy="1e-8" izz="1e-8" ixy="0" ixz="0" iyz="0"/></inertial></link>
<joint name="tcp_mount" type="fixed"><parent link="palm"/><child link="{TCP_LINK}"/>
  <origin xyz="0 0 {TCP_OFFSET_M:g}"/></joint>
<link name="{MARKER_LINK}"><inertial><mass value="0.01"/>
  <inertia ixx="1e-7" iyy="1e-7" izz="1e-7" ixy="0" ixz="0" iyz="0"/></inertial>
  <visual><geometry><mesh filename="{marker_mesh}"/></geometry>
    <material name="marker_white"><color rgba="1 1 1 1"/></material></visual>
  <visual><origin xyz="0.041 0 0.004"/><geometry><box size="0.038 0.02 0.004"/></geometry>
    <material name="bracket"><color rgba="0.15 0.15 0.17 1"/></material></visual>
</link>
<joint name="marker_mount" type="fixed"><parent link="palm"/><child link="{MARKER_LINK}"/>
  <origin xyz="0 0 0"/></joint>
</gripper>"""


def compose_arm_urdf(marker_mesh: str) -> str:
    """The xArm6 + gripper URDF text, with mesh paths made absolute so it loads from anywhere."""
    data = Path(pybullet_data.getDataPath())
    root = ET.parse(data / ARM_URDF).getroot()
    mesh_root = str(data / "xarm" / "xarm_description") + "/"
    for mesh in root.iter("mesh"):
        mesh.set("filename", mesh.get("filename", "").replace("package://xarm_description/",
                                                               mesh_root))
    for tag in ("gazebo", "transmission"):
        for element in root.findall(tag):
            root.remove(element)
    for element in ET.fromstring(_gripper_xml(marker_mesh)):
        root.append(element)
    return ET.tostring(root, encoding="unicode")


def cache_folder(name: str) -> Path:
    """A folder of erarm's generated assets in the user's own cache (XDG_CACHE_HOME or
    ~/.cache), made private (0700) and checked to be a real folder the user owns: a shared,
    predictable temp folder would let another user plant a link or a URDF there."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "erarm"
    folder = root / name
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for level in (root, folder):
        info = level.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() \
                or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise ConfigError(f"{level} is not a private folder of this user's (a link, "
                              "another user's, or writable by others); remove it and run again")
    return folder


def _write_once(path: Path, content: bytes) -> None:
    """Write a generated asset unless that exact content is there; atomically through a new
    file of its own (never following a link), so parallel workers never read half of it."""
    if not path.is_symlink() and path.is_file() and path.read_bytes() == content:
        return
    handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    with os.fdopen(handle, "wb") as file:
        file.write(content)
    os.replace(tmp, path)


def arm_urdf_path() -> Path:
    """Write the composed URDF, the marker plate and its texture once per content into the
    user's cache, and return the URDF's path (the texture is beside it as marker.png)."""
    marker_obj = _marker_obj()
    probe = compose_arm_urdf("marker.obj") + marker_obj
    digest = hashlib.sha256(probe.encode()).hexdigest()[:16]
    folder = cache_folder(f"xarm6-{digest}")
    _write_once(folder / "marker.obj", marker_obj.encode())
    _write_once(folder / "marker.png", cv2.imencode(".png", marker_texture())[1].tobytes())
    urdf = folder / "xarm6_gripper.urdf"
    _write_once(urdf, compose_arm_urdf(str(folder / "marker.obj")).encode())
    return urdf
