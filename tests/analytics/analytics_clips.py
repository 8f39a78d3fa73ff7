"""Labelled clips for the analytics tests and benchmark, made with the ffmpeg CLI.

Each fault clip starts clean and carries its fault from :data:`ONSET` seconds on, so a
detector's onset error is ``event.start - ONSET``. Clips are small (640x360, 8 s, one
keyframe per second like most cameras' default) so the whole analytics suite stays fast
on a 2-core machine. The product never shells out to ffmpeg; only tests and benchmarks do.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

VTEST = (Path(__file__).parents[2] / ".." / "shared" / "media" / "vtest.avi").resolve()
ONSET = 3.5  # deliberately between two keyframes (one per second)
LENGTH = 8.0
SIZE = "640:360"
ENCODE = ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "23", "-pix_fmt", "yuv420p"]


@dataclass(frozen=True)
class Recipe:
    """A fault clip: ffmpeg video filter applied to a clean base clip."""

    name: str  # the event type the clip should raise
    vf: str
    extra: tuple[str, ...] = ()  # extra output options
    suffix: str = ".mp4"


_ON = f"enable='gte(t,{ONSET})'"

VTEST_RECIPES = [
    Recipe("black", f"drawbox=c=black:t=fill:{_ON}"),
    Recipe("frozen", f"trim=0:{ONSET},tpad=stop_mode=clone:stop_duration={LENGTH - ONSET}"),
    Recipe("blur", f"gblur=sigma=6:{_ON}"),
    Recipe("occlusion", f"drawbox=x=0:y=0:w=iw*0.8:h=ih*0.75:c=0x3a3a3a:t=fill:{_ON}"),
    Recipe("color_cast", f"colorchannelmixer=rr=1:gg=0.65:bb=0.4:{_ON}"),
    Recipe("noise", f"noise=alls=80:allf=t:{_ON}"),
    Recipe("too_dark", f"eq=brightness=-0.6:{_ON}"),
    Recipe("too_bright", f"eq=brightness=0.45:{_ON}"),
    # The camera is turned: it looked at the top-left of the plaza, now at the bottom-right.
    Recipe(
        "scene_change",
        f"crop=w=iw*0.6:h=ih*0.6:x='if(gte(t,{ONSET}),iw*0.4,0)':"
        f"y='if(gte(t,{ONSET}),ih*0.4,0)',scale={SIZE}",
    ),
    # No video for 2.5 s: frames are dropped and their timestamps kept (a real gap).
    Recipe(
        "signal_loss",
        f"select='not(between(t,{ONSET},{ONSET + 2.5}))'",
        ("-fps_mode", "passthrough"),
        ".mkv",
    ),
]


def ffmpeg(*args: str) -> None:
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("the ffmpeg CLI is needed to make test clips")
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True)


def make_base(out: Path, *, source: Path = VTEST, length: float = LENGTH, gop: int = 25) -> Path:
    """A clean clip: the first ``length`` seconds of ``source`` at 640x360, audio dropped."""
    ffmpeg("-i", str(source), "-t", str(length), "-an", "-vf", f"scale={SIZE}", *ENCODE,
           "-g", str(gop), str(out))  # fmt: skip
    return out


def make_synthetic(out: Path, *, length: float = LENGTH) -> Path:
    """A clean synthetic clip: ffmpeg's moving colour test pattern."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=640x360:r=25:d={length}", *ENCODE, "-g", "25",
           str(out))  # fmt: skip
    return out


def make_fault(base: Path, recipe: Recipe, out_dir: Path) -> Path:
    """The clip of ``recipe`` made from ``base`` (made once; the clips are deterministic)."""
    out = out_dir / f"{base.stem}-{recipe.name}{recipe.suffix}"
    if out.exists():
        return out
    ffmpeg("-i", str(base), "-vf", recipe.vf, *ENCODE, "-g", "25", *recipe.extra, str(out))
    return out
