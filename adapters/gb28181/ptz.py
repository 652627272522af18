"""The 8-byte PTZCmd of GB/T 28181 DeviceControl (A5 0F 01 … checksum), both directions (R1).

Besides movement, focus/iris and presets, B4 carries the extended instructions: cruise
(0x84 add point, 0x85 remove point, 0x86 speed, 0x87 dwell, 0x88 start; B5 the cruise number),
scan (0x89 with B6 0 start / 1 left boundary / 2 right boundary, 0x8A speed; B5 the scan number)
and auxiliary switches (0x8C on, 0x8D off; B5 the switch, 1 the wiper). Speeds and dwell times are
12-bit: the low byte in B6, the high nibble in B7's high nibble. Cruise and scan stop with the
plain stop frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.base import PtzCommand

RIGHT, LEFT, DOWN, UP, ZOOM_IN, ZOOM_OUT = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
FOCUS_FAR, FOCUS_NEAR, IRIS_OPEN, IRIS_CLOSE = 0x41, 0x42, 0x44, 0x48
PRESET_SET, PRESET_CALL, PRESET_DELETE = 0x81, 0x82, 0x83
PRESET_CODES = {"set": PRESET_SET, "goto": PRESET_CALL, "call": PRESET_CALL, "delete": PRESET_DELETE}
CRUISE_ADD, CRUISE_REMOVE, CRUISE_SPEED, CRUISE_DWELL, CRUISE_START = 0x84, 0x85, 0x86, 0x87, 0x88
SCAN, SCAN_SPEED = 0x89, 0x8A
SCAN_START, SCAN_LEFT, SCAN_RIGHT = 0, 1, 2
AUX_ON, AUX_OFF = 0x8C, 0x8D
WIPER = 1
MAX_12BIT = 0xFFF
EXTENDED = {CRUISE_ADD: "cruise_add", CRUISE_REMOVE: "cruise_remove", CRUISE_SPEED: "cruise_speed",
            CRUISE_DWELL: "cruise_dwell", CRUISE_START: "cruise_start", SCAN_SPEED: "scan_speed",
            AUX_ON: "aux_on", AUX_OFF: "aux_off"}
SCAN_OPS = {SCAN_START: "scan_start", SCAN_LEFT: "scan_left", SCAN_RIGHT: "scan_right"}


@dataclass(frozen=True, slots=True)
class PtzBytes:
    instruction: int
    b5: int = 0
    b6: int = 0
    b7: int = 0

    def hex(self) -> str:
        b = [0xA5, 0x0F, 0x01, self.instruction & 0xFF, self.b5 & 0xFF, self.b6 & 0xFF, self.b7 & 0xFF]
        return bytes(b + [sum(b) % 256]).hex().upper()


STOP = PtzBytes(0)


def _byte(value: int, name: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 0xFF:
        raise ValueError(f"{name}: an integer in {low}..255")
    return value


def _wide(code: int, number: int, value: int, name: str) -> PtzBytes:
    """A 12-bit value: low byte in B6, high nibble in B7's high nibble."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_12BIT:
        raise ValueError(f"{name}: an integer in 1..{MAX_12BIT}")
    return PtzBytes(code, _byte(number, "number"), value & 0xFF, (value >> 8) << 4)


def cruise_add(cruise: int, preset: int) -> PtzBytes:
    return PtzBytes(CRUISE_ADD, _byte(cruise, "cruise"), _byte(preset, "preset", 1))


def cruise_remove(cruise: int, preset: int = 0) -> PtzBytes:
    """Preset 0 removes the whole cruise."""
    return PtzBytes(CRUISE_REMOVE, _byte(cruise, "cruise"), _byte(preset, "preset"))


def cruise_speed(cruise: int, speed: int) -> PtzBytes:
    return _wide(CRUISE_SPEED, cruise, speed, "speed")


def cruise_dwell(cruise: int, seconds: int) -> PtzBytes:
    return _wide(CRUISE_DWELL, cruise, seconds, "seconds")


def cruise_start(cruise: int) -> PtzBytes:
    return PtzBytes(CRUISE_START, _byte(cruise, "cruise"))


def scan(number: int, op: int = SCAN_START) -> PtzBytes:
    """Start the auto scan, or set its left/right boundary at the current position."""
    return PtzBytes(SCAN, _byte(number, "scan"), op)


def scan_speed(number: int, speed: int) -> PtzBytes:
    return _wide(SCAN_SPEED, number, speed, "speed")


def aux(switch: int, on: bool) -> PtzBytes:
    return PtzBytes(AUX_ON if on else AUX_OFF, _byte(switch, "switch", 1))


def frame(text: str) -> PtzBytes:
    """PTZCmd hex → its instruction bytes; ValueError on a bad frame."""
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raise ValueError(f"bad PTZCmd {text!r}") from None
    if len(raw) != 8 or raw[0] != 0xA5 or sum(raw[:7]) % 256 != raw[7]:
        raise ValueError(f"bad PTZCmd {text!r}")
    return PtzBytes(raw[3], raw[4], raw[5], raw[6])


def describe(f: PtzBytes) -> dict[str, int | str]:
    """An extended instruction (cruise, scan, aux) as a dict with its ``op``; ValueError otherwise."""
    wide = f.b6 | (f.b7 >> 4) << 8
    if f.instruction == SCAN:
        op = SCAN_OPS.get(f.b6)
        if op is None:
            raise ValueError(f"unknown scan operation {f.b6}")
        return {"op": op, "scan": f.b5}
    op = EXTENDED.get(f.instruction)
    if op is None:
        raise ValueError(f"not an extended PTZ instruction: {f.instruction:#x}")
    if op.startswith("aux"):
        return {"op": op, "switch": f.b5}
    if op == "scan_speed":
        return {"op": op, "scan": f.b5, "speed": wide}
    out: dict[str, int | str] = {"op": op, "cruise": f.b5}
    if op in ("cruise_add", "cruise_remove"):
        out["preset"] = f.b6
    elif op == "cruise_speed":
        out["speed"] = wide
    elif op == "cruise_dwell":
        out["seconds"] = wide
    return out


def _speed(value: float, full: int) -> int:
    return max(1, min(full, round(abs(value) * full))) if value else 0


def encode(cmd: PtzCommand) -> str:
    """A :class:`PtzCommand` → PTZCmd hex. Focus/iris go out on their own (they use B4 differently)."""
    if cmd.preset is not None:
        action = PRESET_CODES.get(cmd.preset_action or "goto")
        if action is None or not 1 <= cmd.preset <= 255:
            raise ValueError("preset: 1..255 with preset_action set|goto|delete")
        return PtzBytes(action, 0, cmd.preset).hex()
    if cmd.focus or cmd.iris:
        code = (FOCUS_FAR if cmd.focus > 0 else FOCUS_NEAR) if cmd.focus else 0x40
        if cmd.iris:
            code |= IRIS_OPEN if cmd.iris > 0 else IRIS_CLOSE
        return PtzBytes(code, _speed(cmd.focus, 255), _speed(cmd.iris, 255)).hex()
    code = 0
    if cmd.pan:
        code |= RIGHT if cmd.pan > 0 else LEFT
    if cmd.tilt:
        code |= UP if cmd.tilt > 0 else DOWN
    if cmd.zoom:
        code |= ZOOM_IN if cmd.zoom > 0 else ZOOM_OUT
    return PtzBytes(code, _speed(cmd.pan, 255), _speed(cmd.tilt, 255), _speed(cmd.zoom, 15) << 4).hex()


def decode(text: str) -> PtzCommand:
    """PTZCmd hex → :class:`PtzCommand` (the simulator's side); ValueError on a bad frame."""
    f = frame(text)
    code, b5, b6, b7 = f.instruction, f.b5, f.b6, f.b7
    if code & 0x80:
        action = {PRESET_SET: "set", PRESET_CALL: "goto", PRESET_DELETE: "delete"}.get(code)
        if action is None:
            raise ValueError(f"unsupported PTZ instruction {code:#x}")
        return PtzCommand(preset=b6, preset_action=action)
    if code & 0x40:
        focus = (b5 / 255) * (1 if code & 0x03 == 0x01 else -1) if code & 0x03 else 0.0
        iris = (b6 / 255) * (1 if code & 0x0C == 0x04 else -1) if code & 0x0C else 0.0
        return PtzCommand(focus=focus, iris=iris)
    pan = (b5 / 255) * (1 if code & RIGHT else -1) if code & (RIGHT | LEFT) else 0.0
    tilt = (b6 / 255) * (1 if code & UP else -1) if code & (UP | DOWN) else 0.0
    zoom = ((b7 >> 4) / 15) * (1 if code & ZOOM_IN else -1) if code & (ZOOM_IN | ZOOM_OUT) else 0.0
    return PtzCommand(pan=pan, tilt=tilt, zoom=zoom)
