"""The lab's TCP relay against real sockets on 127.0.0.1: it forwards both ways, counts bytes, and a cut closes
both sides with an orderly end of stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from livemig.lab.relay import Relay


@contextlib.asynccontextmanager
async def echo_server() -> AsyncIterator[tuple[int, list[asyncio.StreamReader]]]:
    """A server that echoes upper-cased bytes back; yields its port and the readers of accepted connections."""
    readers: list[asyncio.StreamReader] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        readers.append(reader)
        try:
            while data := await reader.read(65536):
                writer.write(data.upper())
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], readers
    finally:
        server.close()


async def test_relay_forwards_both_ways_and_counts_bytes() -> None:
    async with echo_server() as (port, _):
        relay = Relay(port)
        relay_port = await relay.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", relay_port)
        payload = b"page" * 100_000  # 400 kB, several chunks
        writer.write(payload)
        await writer.drain()
        echoed = await asyncio.wait_for(reader.readexactly(len(payload)), 10)
        assert echoed == payload.upper()
        assert relay.bytes_forward == len(payload)
        assert relay.bytes_backward == len(payload)
        assert relay.connections == 1
        writer.close()
        await relay.close()


async def test_cut_ends_both_streams_and_refuses_new_connections() -> None:
    async with echo_server() as (port, server_readers):
        relay = Relay(port)
        relay_port = await relay.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", relay_port)
        writer.write(b"hello")
        await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(5), 10) == b"HELLO"

        await relay.cut()

        # The client side sees end of stream (or a reset), never more data.
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(reader.read(), 10) == b""
        # The server side's connection ends too.
        assert server_readers
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(server_readers[0].read(), 10) == b""
        # And the relay no longer listens.
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", relay_port)
        writer.close()
        await relay.close()


async def test_relay_refuses_anything_but_loopback() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        Relay(1234, host="0.0.0.0")
