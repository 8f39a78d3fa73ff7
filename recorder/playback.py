"""Browser playback of recorded ranges: an HLS VOD playlist over the segment files as they are.

Every segment is a complete fragmented MP4, so HLS can use it in place: its ``ftyp``+``moov``
is the initialisation section (``EXT-X-MAP`` with a byte range) and its fragments are one
media segment (``EXT-X-BYTERANGE``). Each file's timeline starts at zero, hence a
discontinuity before each; ``EXT-X-PROGRAM-DATE-TIME`` gives players the wall-clock time,
so a timeline can show gaps where they are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from recorder.index import Segment
from recorder.layout import iso


def playlist(segments: Sequence[Segment], uri: Callable[[Segment], str]) -> str:
    target = max((math.ceil(s.duration) for s in segments), default=1)
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{max(target, 1)}",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    for i, segment in enumerate(segments):
        location = uri(segment)
        if i:
            lines.append("#EXT-X-DISCONTINUITY")
        lines += [
            f"#EXT-X-PROGRAM-DATE-TIME:{iso(segment.start)}",
            f'#EXT-X-MAP:URI="{location}",BYTERANGE="{segment.init_size}@0"',
            f"#EXTINF:{segment.duration:.3f},",
            f"#EXT-X-BYTERANGE:{segment.media_end - segment.init_size}@{segment.init_size}",
            location,
        ]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
