"""The 8-byte PTZCmd of GB/T 28181 DeviceControl (A5 0F 01 … checksum), both directions (R1)."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.base import PtzCommand

RIGHT, LEFT, DOWN, UP, ZOOM_IN, ZOOM_OUT = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
FOCUS_FAR, FOCUS_NEAR, IRIS_OPEN, IRIS_CLOSE = 0x41, 0x42, 0x44, 0x48
PRESET_SET, PRESET_CALL, PRESET_DELETE = 0x81, 0x82, 0x83
PRESET_CODES = {"set": PRESET_SET, "goto": PRESET_CALL, "call": PRESET_CALL, "delete": PRESET_DELETE}


@dataclass(frozen=True, slots=True)
class PtzBytes:
    instruction: int
    b5: int = 0
    b6: int = 0
    b7: int = 0

    def hex(self) -> str:
        b = [0xA5, 0x0F, 0x01, self.instruction & 0xFF, self.b5 & 0xFF, self.b6 & 0xFF, self.b7 & 0xFF]
        return bytes(b + [sum(b) % 256]).hex().upper()


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
    raw = bytes.fromhex(text.strip())
    if len(raw) != 8 or raw[0] != 0xA5 or sum(raw[:7]) % 256 != raw[7]:
        raise ValueError(f"bad PTZCmd {text!r}")
    code, b5, b6, b7 = raw[3], raw[4], raw[5], raw[6]
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
