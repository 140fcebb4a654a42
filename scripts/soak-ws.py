#!/usr/bin/env python3
"""WebSocket traffic for scripts/soak-gateway, standard library only (RFC 6455, text frames up to 125 bytes).

  soak-ws.py serve PORT
      an echo server on 127.0.0.1:PORT: answers any upgrade, echoes every text frame, closes on a close frame.
  soak-ws.py clients HOST:PORT PATH COOKIE N SECONDS STATS_FILE
      N clients through the gateway for SECONDS: each upgrades, exchanges a message every 100 ms for 5 s, closes,
      and starts again. Every 10 s the totals so far go to STATS_FILE as "sessions messages failures open".
"""
import asyncio
import base64
import hashlib
import os
import sys
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(payload: bytes, opcode: int = 1, mask: bool = False) -> bytes:
    assert len(payload) <= 125
    head = bytes([0x80 | opcode, (0x80 if mask else 0) | len(payload)])
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    length = b1 & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    key = await reader.readexactly(4) if b1 & 0x80 else None
    data = await reader.readexactly(length)
    if key:
        data = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    return b0 & 0x0F, data


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def serve_one(reader, writer):
    try:
        head = (await read_head(reader)).decode("latin-1")
        key = next(
            line.split(":", 1)[1].strip()
            for line in head.split("\r\n")
            if line.lower().startswith("sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        writer.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        while True:
            opcode, data = await read_frame(reader)
            if opcode == 8:
                writer.write(frame(b"", opcode=8))
                break
            writer.write(frame(data, opcode=opcode))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, StopIteration):
        pass
    finally:
        writer.close()


async def serve(port: int):
    server = await asyncio.start_server(serve_one, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


class Totals:
    sessions = 0
    messages = 0
    failures = 0
    open = 0


async def client(host: str, port: int, path: str, cookie: str, until: float, totals: Totals):
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection(host, port)
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(
                (
                    f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nCookie: {cookie}\r\n\r\n"
                ).encode()
            )
            head = await asyncio.wait_for(read_head(reader), 10)
            if not head.startswith(b"HTTP/1.1 101"):
                raise ConnectionError(head.split(b"\r\n")[0].decode("latin-1"))
            totals.open += 1
            try:
                for i in range(50):
                    message = f"soak {i}".encode()
                    writer.write(frame(message, mask=True))
                    opcode, data = await asyncio.wait_for(read_frame(reader), 10)
                    if data != message:
                        raise ConnectionError("echo mismatch")
                    totals.messages += 1
                    await asyncio.sleep(0.1)
                writer.write(frame(b"", opcode=8, mask=True))
                await asyncio.wait_for(read_frame(reader), 10)
                totals.sessions += 1
            finally:
                totals.open -= 1
                writer.close()
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            totals.failures += 1
            await asyncio.sleep(0.5)


async def clients(target: str, path: str, cookie: str, n: int, seconds: float, stats: str):
    host, port = target.rsplit(":", 1)
    totals = Totals()
    until = time.monotonic() + seconds

    async def report():
        while time.monotonic() < until:
            await asyncio.sleep(10)
            with open(stats, "w") as f:
                f.write(f"{totals.sessions} {totals.messages} {totals.failures} {totals.open}\n")

    reporter = asyncio.create_task(report())
    await asyncio.gather(*(client(host, int(port), path, cookie, until, totals) for _ in range(n)))
    reporter.cancel()
    with open(stats, "w") as f:
        f.write(f"{totals.sessions} {totals.messages} {totals.failures} {totals.open}\n")


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        asyncio.run(serve(int(sys.argv[2])))
    else:
        _, _, target, path, cookie, n, seconds, stats = sys.argv
        asyncio.run(clients(target, path, cookie, int(n), float(seconds), stats))
