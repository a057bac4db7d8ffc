"""Copying a video's audio into the output packet by packet: no decoding, no re-encoding, no loss.

The input is opened a second time, for its audio streams only, so that the decoder thread never shares
its demuxer; packets are interleaved with the video by time (``copy_until``) as frames are written.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ._pyav import ffmpeg_reason
from ._source import VideoReadError


class AudioCopy:
    """Every audio stream of the video at ``path``, mapped to new streams of the output ``container``.

    Raises ``InputError`` when the output format cannot hold one of the codecs (the message names a
    container that can, and how to drop the audio instead).
    """

    def __init__(self, av, path: Path, container, target: Path) -> None:
        self._av, self.path, self._container = av, path, container
        self._input = av.open(str(path), "r")
        try:
            streams = list(self._input.streams.audio)
            for stream in streams:
                name = stream.codec_context.name
                if name not in container.supported_codecs:
                    raise InputError(
                        f"{path}: its {name} audio cannot be copied into {target.suffix or 'this'} files; "
                        "write .mkv or .mov instead, or leave the audio out (audio=False, --no-audio)"
                    )
            self._streams = {s.index: container.add_stream_from_template(s) for s in streams}
            self._packets = self._input.demux(*streams) if streams else iter(())
        except BaseException:
            self._input.close()
            raise
        self._held = None

    def copy_until(self, seconds: float | None) -> None:
        """Mux the packets that start before ``seconds`` (input timeline); ``None``: all that remain."""
        try:
            while True:
                packet, self._held = self._held or next(self._packets, None), None
                if packet is None:
                    return
                if packet.dts is None or packet.size == 0:  # the demuxer's end-of-stream markers
                    continue
                if seconds is not None and packet.pts is not None and packet.pts * packet.time_base >= seconds:
                    self._held = packet
                    return
                packet.stream = self._streams[packet.stream.index]
                self._container.mux(packet)
        except self._av.error.FFmpegError as exc:
            raise VideoReadError(f"{self.path}: cannot copy its audio ({ffmpeg_reason(exc)})") from None

    def close(self) -> None:
        self._input.close()
