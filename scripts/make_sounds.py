"""Writes the scan page's three short sounds (ok / repeat / error) as WAV files.

    .venv/bin/python scripts/make_sounds.py      # writes static/sounds/*.wav

Generated with the standard library (no samples of unknown licence in the repository);
the files are committed, so running this again is only needed to change a sound.
"""

import math
import struct
import wave
from pathlib import Path

RATE = 22050
OUT = Path(__file__).resolve().parent.parent / "static" / "sounds"

# Each sound: (frequency Hz, seconds, waveform) notes, with a short gap between them.
SOUNDS = {
    "ok": [(880, 0.09, "sine"), (1320, 0.16, "sine")],           # rising, bright: checked in
    "repeat": [(740, 0.08, "sine"), (740, 0.08, "sine")],       # double beep: already in
    "error": [(330, 0.18, "square"), (220, 0.30, "square")],    # low, falling buzz: rejected
}


def _note(freq: float, seconds: float, shape: str) -> list[float]:
    count = int(RATE * seconds)
    fade = int(RATE * 0.012)
    samples = []
    for i in range(count):
        phase = math.sin(2 * math.pi * freq * i / RATE)
        value = phase if shape == "sine" else (0.55 if phase >= 0 else -0.55)
        envelope = min(1.0, i / fade, (count - i) / fade)  # no clicks at either end
        samples.append(value * envelope)
    return samples


def render(notes) -> bytes:
    samples: list[float] = []
    for freq, seconds, shape in notes:
        samples += _note(freq, seconds, shape) + [0.0] * int(RATE * 0.035)
    return b"".join(struct.pack("<h", int(0.6 * 32767 * s)) for s in samples)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, notes in SOUNDS.items():
        with wave.open(str(OUT / f"{name}.wav"), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(render(notes))
        print(OUT / f"{name}.wav")


if __name__ == "__main__":
    main()
