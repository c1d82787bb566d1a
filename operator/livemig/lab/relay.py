"""A TCP relay on 127.0.0.1 in the migration stream, so that a test can cut the link.

The source QEMU connects to the relay; the relay connects to the destination's `migrate-incoming` port and
copies bytes both ways (post-copy's return path runs destination -> source on the same connection).  `cut()`
shuts down and closes every socket, so both QEMUs see an orderly end of stream (FIN), like a peer going away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

logger = logging.getLogger(__name__)

CHUNK = 256 * 1024
LOOPBACK = "127.0.0.1"


class Relay:
    """Forward connections from `port` (ephemeral) to `LOOPBACK:target_port`; count bytes each way."""

    def __init__(self, target_port: int, *, host: str = LOOPBACK) -> None:
        if host != LOOPBACK:
            raise ValueError("the lab relay only listens and connects on 127.0.0.1")
        self.target_port = target_port
        self.host = host
        self.port = 0
        self.bytes_forward = 0  # source -> destination
        self.bytes_backward = 0  # destination -> source (post-copy page requests)
        self.connections = 0
        self.cut_done = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _accept(self, src_reader: asyncio.StreamReader, src_writer: asyncio.StreamWriter) -> None:
        if self.cut_done:
            src_writer.close()
            return
        try:
            dst_reader, dst_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError as exc:
            logger.warning("relay: cannot reach 127.0.0.1:%d: %s", self.target_port, exc)
            src_writer.close()
            return
        self.connections += 1
        self._writers.update((src_writer, dst_writer))
        forward = asyncio.create_task(self._pump(src_reader, dst_writer, forward=True))
        backward = asyncio.create_task(self._pump(dst_reader, src_writer, forward=False))
        self._tasks.update((forward, backward))
        await asyncio.gather(forward, backward, return_exceptions=True)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, forward: bool) -> None:
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                if forward:
                    self.bytes_forward += len(data)
                else:
                    self.bytes_backward += len(data)
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass

    async def cut(self) -> None:
        """Close the link: stop listening and shut down every forwarded connection (both directions)."""
        self.cut_done = True
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            sock = writer.get_extra_info("socket")
            with contextlib.suppress(OSError):
                if sock is not None:
                    sock.shutdown(2)  # SHUT_RDWR
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._writers.clear()

    async def close(self) -> None:
        await self.cut()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)


_SINK = """
import socket, sys, time
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept(); buf = bytearray(1 << 20); view = memoryview(buf); total = 0; first = None
while True:
    n = conn.recv_into(view)
    if not n:
        break
    if first is None:
        first = time.perf_counter()
    total += n
print(total, time.perf_counter() - first, flush=True)
"""

_SOURCE = """
import socket, sys
total = int(sys.argv[2]); block = b"Z" * (1 << 20)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sent = 0
while sent < total:
    s.sendall(block); sent += len(block)
s.close()
"""


async def measure_throughput(total_bytes: int = 256 * 2**20) -> float:
    """Bytes/s that one stream carries through a `Relay` on loopback between two other processes (as QEMU's
    source and destination are): an iperf of the lab's link.

    QEMU lifts `max-bandwidth` for the stop-and-copy, so the lab's downtime is set by this speed, not by the cap.
    """
    import sys

    sink = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _SINK, stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL
    )
    relay: Relay | None = None
    try:
        assert sink.stdout is not None
        port = int((await asyncio.wait_for(sink.stdout.readline(), 10)).decode())
        relay = Relay(port)
        relay_port = await relay.start()
        source = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _SOURCE, str(relay_port), str(total_bytes), stdin=asyncio.subprocess.DEVNULL
        )
        await asyncio.wait_for(source.wait(), 60)
        received, elapsed = (await asyncio.wait_for(sink.stdout.readline(), 60)).decode().split()
        return int(received) / float(elapsed)
    finally:
        if relay is not None:
            await relay.close()
        if sink.returncode is None:
            sink.kill()
        await sink.wait()
