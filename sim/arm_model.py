"""The simulated arm's model: the xArm6 from pybullet_data with a parallel-jaw gripper of our own.

The stock xArm gripper is a linkage closed by mimic joints, which PyBullet does not honour. Instead
we append two prismatic fingers to the xArm6 flange in one URDF (so the gripper is part of the
multibody, not welded on) and couple them with a gear constraint at load time. Grasps then hold by
contact and friction alone.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pybullet_data

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


def _gripper_xml() -> str:
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
</gripper>"""


def compose_arm_urdf() -> str:
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
    for element in ET.fromstring(_gripper_xml()):
        root.append(element)
    return ET.tostring(root, encoding="unicode")


def arm_urdf_path() -> Path:
    """Write the composed URDF once per content into the temp dir and return its path."""
    text = compose_arm_urdf()
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"erarm-xarm6-gripper-{digest}.urdf"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)  # atomic, so parallel workers never read half a file
    return path
