"""The recorder: crash-safe segmented storage of the hub's streams, its index, retention,
playback and export.

- ``service`` — what the gateway runs: one hub subscriber and writer per recorded camera;
- ``writer`` — stream copy into fragmented MP4 segments (``layout`` names them);
- ``mp4`` — reading segments back: box layout, repair, the facts the index keeps;
- ``index`` — SQLite: segments, gaps, evidence holds; ``reconcile`` squares it with the disk;
- ``retention`` — expiry per class and camera, eviction under the low-water mark;
- ``export`` — one MP4 of a time range; ``playback`` — HLS VOD over the segments;
- ``cli`` — ``sharpeyes export``.
"""
