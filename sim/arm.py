"""The simulated xArm6 and its controller: the `Robot` of a simulated workcell.

Inverse kinematics runs on a kinematic copy of the arm in a second, private physics client, so the
simulated arm itself only ever moves by its motors. Tool motions follow a straight line in space,
timed by the joint-velocity limit and the Cartesian speed cap, and end when the arm has settled.
"""

from __future__ import annotations

import math

import numpy as np
import pybullet as pb

from erarm.robots.base import (
    CameraCalibration,
    GripperReport,
    MoveReport,
    RobotState,
    ToolPose,
    WorkspaceLimits,
)
from erarm.robots.errors import MotionBlocked, RobotError
from erarm.sim.arm_model import (
    ARM_JOINTS,
    FINGER_JOINTS,
    FINGER_TRAVEL_M,
    MARKER,
    MARKER_LINK,
    TCP_LINK,
    arm_urdf_path,
)
from erarm.sim.self_model import ArmSelfModel
from erarm.sim.transforms import quaternion
from erarm.sim.world import STEP_HZ, World

HOME_POSE = ToolPose(x=0.27, y=0.0, z=0.33, yaw=0.0)
JOINT_SPEED_RAD_S = 1.6  # below the URDF's 3.14 rad/s, as a careful operator would set it
WAYPOINT_SPACING_M = 0.025
GRIP_FORCE_N = 25.0
FINGER_SPEED_M_S = 0.12
OPEN_GAP_M = 2 * FINGER_TRAVEL_M * 0.9
HOLDING_GAP_M = 0.004  # closed jaws further apart than this are holding something
JAMMED_GAP_M = 0.006  # open jaws this far short of fully open have something stuck in them
REACH_TOLERANCE_M = 0.015  # a settled pose further than this from its target is a failure
IK_TOLERANCE_M = 5e-4


def _smoothstep(s: float) -> float:
    return s * s * (3 - 2 * s)


class SimArm:
    """An xArm6 with a parallel gripper in a `World`."""

    name = "xarm6-sim"
    physical = False
    marker = MARKER  # the calibration marker on the tool, known by construction

    def __init__(self, world: World, limits: WorkspaceLimits | None = None):
        self.world = world
        self.limits = limits or WorkspaceLimits()
        self._connected = False
        self._self_model: ArmSelfModel | None = None  # made on the first calibration check
        client, arm = world.client, world.arm
        index = {pb.getJointInfo(arm, j, physicsClientId=client)[1].decode(): j
                 for j in range(pb.getNumJoints(arm, physicsClientId=client))}
        link = {pb.getJointInfo(arm, j, physicsClientId=client)[12].decode(): j
                for j in range(pb.getNumJoints(arm, physicsClientId=client))}
        self._joints = [index[name] for name in ARM_JOINTS]
        self._fingers = [index[name] for name in FINGER_JOINTS]
        self._tcp = link[TCP_LINK]
        texture = pb.loadTexture(str(arm_urdf_path().with_name("marker.png")),
                                 physicsClientId=client)
        pb.changeVisualShape(arm, link[MARKER_LINK], textureUniqueId=texture,
                             physicsClientId=client)
        info = [pb.getJointInfo(arm, j, physicsClientId=client) for j in self._joints]
        self._lower = np.array([i[8] for i in info])
        self._upper = np.array([i[9] for i in info])
        self._max_force = [i[10] for i in info]

        self._ik_client = pb.connect(pb.DIRECT)
        self._ik_arm = pb.loadURDF(str(arm_urdf_path()), useFixedBase=True,
                                   physicsClientId=self._ik_client)
        # null-space IK keeps solutions near a comfortable elbow-up posture
        self._rest = np.array([0.0, -0.4, -0.9, 0.0, 1.3, 0.0])
        self._home_q = self._solve(HOME_POSE, self._rest)
        for joint, q in zip(self._joints, self._home_q, strict=True):
            pb.resetJointState(arm, joint, q, physicsClientId=client)  # initial posture only
        self._hold(self._home_q)
        gear = pb.createConstraint(arm, self._fingers[0], arm, self._fingers[1], pb.JOINT_GEAR,
                                   [0, 1, 0], [0, 0, 0], [0, 0, 0], physicsClientId=client)
        pb.changeConstraint(gear, gearRatio=-1, erp=0.2, maxForce=200, physicsClientId=client)
        for finger in self._fingers:
            pb.resetJointState(arm, finger, OPEN_GAP_M / 2, physicsClientId=client)
            pb.changeDynamics(arm, finger, lateralFriction=1.5, spinningFriction=0.002,
                              frictionAnchor=1, physicsClientId=client)
        self._command_fingers(OPEN_GAP_M / 2)
        self._gripper_open = True

    # -- Robot contract ---------------------------------------------------------------------
    def connect(self) -> None:
        self._connected = True

    def close(self) -> None:
        self._connected = False
        if pb.isConnected(self._ik_client):
            pb.disconnect(self._ik_client)
        if self._self_model is not None:
            self._self_model.close()

    def move_to(self, pose: ToolPose) -> MoveReport:
        self._require_connected()
        problem = self.limits.problem(pose)
        if problem:
            raise RobotError(f"refusing to move the tool: {problem}")
        start = self.state().tool
        goal = pose
        if pose.roll == pose.pitch == 0:  # a parallel gripper pointing down: a half turn is free
            goal = pose.model_copy(update={"yaw": self._nearest_equivalent_yaw(pose.yaw,
                                                                               start.yaw)})
        distance = float(np.linalg.norm(goal.position() - start.position()))
        turn = max(abs(goal.yaw - start.yaw), abs(goal.roll - start.roll),
                   abs(goal.pitch - start.pitch))
        count = max(1, math.ceil(distance / WAYPOINT_SPACING_M), math.ceil(turn / 0.2))
        waypoints, lengths = [self._joint_positions()], []
        for k in range(1, count + 1):
            s = k / count
            step_pose = ToolPose(**{axis: getattr(start, axis) + s * (getattr(goal, axis)
                                                                      - getattr(start, axis))
                                    for axis in ("x", "y", "z", "yaw", "roll", "pitch")})
            waypoints.append(self._solve(step_pose, waypoints[-1]))
            lengths.append(distance / count)
        duration = self._follow(np.array(waypoints), lengths)
        return self._report(pose, duration)

    def set_gripper(self, opened: bool) -> GripperReport:
        self._require_connected()
        start = self.world.steps
        self._gripper_open = opened
        self._command_fingers(OPEN_GAP_M / 2 if opened else 0.0)
        for _ in range(STEP_HZ):  # at most one second
            self.world.step(4)
            speeds = [pb.getJointState(self.world.arm, f, physicsClientId=self.world.client)[1]
                      for f in self._fingers]
            if self.world.steps - start > 24 and max(abs(v) for v in speeds) < 1e-3:
                break
        return GripperReport(opened=opened, opening_m=self._gap(), holding=self._holding(),
                             duration_s=(self.world.steps - start) / STEP_HZ)

    def return_to_origin(self) -> MoveReport:
        self._require_connected()
        current = self._joint_positions()
        duration = self._follow(np.array([current, self._home_q]), [0.0])
        return self._report(HOME_POSE, duration)

    def reachable(self, pose: ToolPose) -> str | None:
        """Inside the limits, and solved on the kinematic copy from the home posture; the arm
        does not move."""
        problem = self.limits.problem(pose)
        if problem:
            return problem
        try:
            self._solve(pose, self._home_q)
        except RobotError as err:
            return str(err)
        return None

    def stop(self) -> None:
        """Hold the joints where they are now."""
        if pb.isConnected(self.world.client):
            self._hold(self._joint_positions())
            self.world.step()

    def state(self) -> RobotState:
        if not pb.isConnected(self.world.client):  # its workcell was closed
            raise RobotError("the simulated arm is closed: open the workcell again")
        return RobotState(joint_positions_rad=self._joint_positions().tolist(),
                          tool=self._tool_pose(), gripper_open=self._gripper_open,
                          gripper_opening_m=self._gap(), holding=self._holding())

    # -- self-model (SeesItself), for the calibration check ------------------------------
    def expected_depth(self, calibration: CameraCalibration) -> np.ndarray:
        """The arm's model at its joint readings, rendered through `calibration`."""
        if self._self_model is None:
            self._self_model = ArmSelfModel()
        state = self.state()
        return self._self_model.expected_depth(calibration, state.joint_positions_rad,
                                               state.gripper_opening_m)

    # -- kinematics ------------------------------------------------------------------------
    def _solve(self, pose: ToolPose, seed: np.ndarray) -> np.ndarray:
        """Joint angles that put the TCP at `pose`, refined on the kinematic copy."""
        client, arm = self._ik_client, self._ik_arm
        for joint, q in zip(self._joints, seed, strict=True):
            pb.resetJointState(arm, joint, q, physicsClientId=client)
        target = [pose.x, pose.y, pose.z]
        orientation = quaternion(pose.rotation())
        lower = [*self._lower, 0.0, 0.0]
        upper = [*self._upper, FINGER_TRAVEL_M, FINGER_TRAVEL_M]
        ranges = [u - lo for u, lo in zip(upper, lower, strict=True)]
        rest = [*seed, 0.0, 0.0]
        solution, error = np.asarray(seed), math.inf
        for _ in range(6):
            q = pb.calculateInverseKinematics(
                arm, self._tcp, target, orientation, lowerLimits=lower, upperLimits=upper,
                jointRanges=ranges, restPoses=rest, maxNumIterations=100,
                residualThreshold=1e-6, physicsClientId=client)
            solution = np.asarray(q[:6])
            for joint, angle in zip(self._joints, solution, strict=True):
                pb.resetJointState(arm, joint, angle, physicsClientId=client)
            reached = pb.getLinkState(arm, self._tcp, computeForwardKinematics=True,
                                      physicsClientId=client)[4]
            error = float(np.linalg.norm(np.subtract(reached, target)))
            if error < IK_TOLERANCE_M:
                break
        if error > 10 * IK_TOLERANCE_M:
            raise RobotError(f"the arm cannot reach ({pose.x:.3f}, {pose.y:.3f}, {pose.z:.3f}) m "
                             f"pointing down (closest {error * 1000:.0f} mm away)")
        if np.any(solution < self._lower - 1e-6) or np.any(solution > self._upper + 1e-6):
            raise RobotError(f"reaching ({pose.x:.3f}, {pose.y:.3f}, {pose.z:.3f}) m would exceed "
                             "a joint limit")
        return solution

    # -- motion ----------------------------------------------------------------------------
    def _follow(self, waypoints: np.ndarray, lengths: list[float]) -> float:
        """Drive through joint waypoints with a smooth time law; return robot seconds taken."""
        start = self.world.steps
        segment_times = [
            max(float(np.max(np.abs(b - a))) / JOINT_SPEED_RAD_S,
                length / self.limits.max_speed_m_s, 1 / STEP_HZ)
            for a, b, length in zip(waypoints[:-1], waypoints[1:], lengths, strict=True)]
        knots = np.concatenate([[0.0], np.cumsum(segment_times)])
        # smoothstep peaks at 1.5x its mean speed, so stretch time to respect the limits
        total_steps = max(2, math.ceil(1.5 * knots[-1] * STEP_HZ))
        previous = waypoints[0]
        for i in range(1, total_steps + 1):
            tau = _smoothstep(i / total_steps) * knots[-1]
            target = np.array([np.interp(tau, knots, waypoints[:, j]) for j in range(6)])
            self._drive(target, (target - previous) * STEP_HZ)
            previous = target
            self.world.step()
        self._settle(waypoints[-1])
        return (self.world.steps - start) / STEP_HZ

    def _settle(self, target: np.ndarray) -> None:
        self._drive(target, np.zeros(6))
        for i in range(STEP_HZ // 4):  # at most one second
            self.world.step(4)
            speeds = [pb.getJointState(self.world.arm, j, physicsClientId=self.world.client)[1]
                      for j in self._joints]
            if i >= 2 and max(abs(v) for v in speeds) < 2e-3:
                return

    def _drive(self, positions: np.ndarray, velocities: np.ndarray) -> None:
        pb.setJointMotorControlArray(
            self.world.arm, self._joints, pb.POSITION_CONTROL, targetPositions=positions.tolist(),
            targetVelocities=velocities.tolist(), forces=self._max_force,
            positionGains=[0.3] * 6, velocityGains=[1.0] * 6, physicsClientId=self.world.client)

    def _hold(self, positions: np.ndarray) -> None:
        self._drive(np.asarray(positions), np.zeros(6))

    def _command_fingers(self, gap_per_finger: float) -> None:
        for finger in self._fingers:
            pb.setJointMotorControl2(self.world.arm, finger, pb.POSITION_CONTROL,
                                     targetPosition=gap_per_finger, force=GRIP_FORCE_N,
                                     maxVelocity=FINGER_SPEED_M_S,
                                     physicsClientId=self.world.client)

    # -- readings --------------------------------------------------------------------------
    def _joint_positions(self) -> np.ndarray:
        states = pb.getJointStates(self.world.arm, self._joints, physicsClientId=self.world.client)
        return np.array([s[0] for s in states])

    def _gap(self) -> float:
        states = pb.getJointStates(self.world.arm, self._fingers,
                                   physicsClientId=self.world.client)
        return float(sum(s[0] for s in states))

    def _holding(self) -> bool:
        """Closed jaws that stay apart hold something; open jaws that cannot open fully have
        something wedged between them."""
        if self._gripper_open:
            return self._gap() < OPEN_GAP_M - JAMMED_GAP_M
        return self._gap() > HOLDING_GAP_M

    def _tool_pose(self) -> ToolPose:
        state = pb.getLinkState(self.world.arm, self._tcp, computeForwardKinematics=True,
                                physicsClientId=self.world.client)
        (x, y, z), orientation = state[4], state[5]
        return ToolPose.from_rotation(
            x, y, z, np.reshape(pb.getMatrixFromQuaternion(orientation), (3, 3)))

    def _report(self, target: ToolPose, duration: float) -> MoveReport:
        reached = self._tool_pose()
        error = float(np.linalg.norm(reached.position() - target.position()))
        if error > REACH_TOLERANCE_M:
            raise MotionBlocked(f"the arm stopped {error * 1000:.0f} mm short of "
                             f"({target.x:.3f}, {target.y:.3f}, {target.z:.3f}) m")
        return MoveReport(target=target, reached=reached, position_error_m=error,
                          duration_s=duration)

    @staticmethod
    def _nearest_equivalent_yaw(yaw: float, current: float) -> float:
        """A parallel gripper is symmetric under a half turn: pick the closer of yaw and yaw+pi."""
        return current + (yaw - current + math.pi / 2) % math.pi - math.pi / 2

    def _require_connected(self) -> None:
        if not self._connected:
            raise RobotError("the simulated arm is not connected")
