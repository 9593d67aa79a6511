"""Home Assistant's websocket API for tests (run with .venv-ha's python, whose aiohttp Home Assistant ships):
`ha_ws.py <ws url> <token>` reads a JSON list of commands on stdin, sends each (with an id) after the
auth handshake and prints the JSON list of their `result` messages."""
import asyncio
import json
import sys

import aiohttp


async def main() -> None:
    url, token, commands = sys.argv[1], sys.argv[2], json.load(sys.stdin)
    out = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        hello = await ws.receive_json(timeout=30)
        assert hello["type"] == "auth_required", hello
        await ws.send_json({"type": "auth", "access_token": token})
        answer = await ws.receive_json(timeout=30)
        assert answer["type"] == "auth_ok", answer
        for n, command in enumerate(commands, 1):
            await ws.send_json({"id": n, **command})
            while True:
                msg = await ws.receive_json(timeout=60)
                if msg.get("id") == n and msg.get("type") == "result":
                    out.append(msg)
                    break
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())
