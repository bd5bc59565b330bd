"""tests/realmodel/proxy.py LISTEN_PORT UPSTREAM_PORT CONTROL_PORT

A TCP relay on 127.0.0.1 in front of the model server, for the real-model
stage. It forwards bytes unchanged and watches them: for each connection it
records the request body (JSON, when it parses), the response status, the
finish_reason values seen, how many chunks carried content, the usage
objects, whether `data: [DONE]` came, and which side closed first. On request it answers the next N connections itself with
`429 Too Many Requests` and `Retry-After`, without asking the server.

Control (HTTP on CONTROL_PORT, loopback only):
  GET  /stats            -> {"exchanges": [...]} (oldest first)
  POST /fail429/N/SECS   -> the next N connections get a 429, Retry-After SECS
Only loopback is ever listened on or connected to.
"""
import asyncio
import json
import re
import sys
import time

HOST = "127.0.0.1"
exchanges = []
pending_429 = {"count": 0, "retry_after": 1}


def parse_body(raw):
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


async def read_request(reader):
    """The head and Content-Length bytes of body (what a 429 needs read)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await reader.read(65536)
        if not chunk:
            return data
        data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    match = re.search(r"(?im)^content-length:\s*(\d+)", head)
    want = len(head) + 4 + (int(match.group(1)) if match else 0)
    while len(data) < want:
        chunk = await reader.read(65536)
        if not chunk:
            break
        data += chunk
    return data


async def answer_429(reader, writer, record):
    request = await read_request(reader)
    record["request"] = parse_body(request)
    record["status"] = 429
    body = b'{"error":{"message":"rate limited by the test proxy"}}'
    writer.write(b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
                 b"Retry-After: %d\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                 % (pending_429["retry_after"], len(body), body))
    await writer.drain()
    writer.close()
    record["closed_by"] = "proxy"
    record["ended_s"] = time.monotonic()


async def pump(reader, writer, sink, record, side):
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            sink.append(chunk)
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    if "closed_by" not in record:
        record["closed_by"] = side
    try:
        writer.close()
    except (ConnectionError, OSError):
        pass


async def relay(client_reader, client_writer):
    upstream_port = int(sys.argv[2])
    record = {"started_s": time.monotonic()}
    exchanges.append(record)
    if pending_429["count"] > 0:
        pending_429["count"] -= 1
        await answer_429(client_reader, client_writer, record)
        return
    try:
        up_reader, up_writer = await asyncio.open_connection(HOST, upstream_port)
    except OSError as err:
        record["status"] = 0
        record["closed_by"] = "proxy: " + str(err)
        client_writer.close()
        return
    sent, received = [], []
    await asyncio.gather(pump(client_reader, up_writer, sent, record, "client"),
                         pump(up_reader, client_writer, received, record, "server"))
    request, response = b"".join(sent), b"".join(received)
    record["request"] = parse_body(request)
    status = re.match(rb"HTTP/1\.[01] (\d{3})", response)
    record["status"] = int(status.group(1)) if status else 0
    record["finish_reasons"] = [m.decode() for m in
                                re.findall(rb'"finish_reason":\s*"([a-z_]+)"', response)]
    record["done"] = b"data: [DONE]" in response
    record["content_chunks"] = len(re.findall(rb'"delta":\s*\{[^}]*"content":', response))
    record["usage"] = [json.loads(m) for m in re.findall(rb'"usage":\s*(\{[^{}]*\})', response)]
    record["ended_s"] = time.monotonic()


async def control(reader, writer):
    request = await read_request(reader)
    line = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    method, path = (line + ["", ""])[:2]
    match = re.fullmatch(r"/fail429/(\d+)/(\d+)", path)
    if method == "GET" and path == "/stats":
        body, status = json.dumps({"exchanges": exchanges}).encode(), b"200 OK"
    elif method == "POST" and match:
        pending_429["count"], pending_429["retry_after"] = int(match.group(1)), int(match.group(2))
        body, status = b"{}", b"200 OK"
    else:
        body, status = b'{"error":"unknown control request"}', b"404 Not Found"
    writer.write(b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                 b"Connection: close\r\n\r\n%s" % (status, len(body), body))
    await writer.drain()
    writer.close()


async def main():
    front = await asyncio.start_server(relay, HOST, int(sys.argv[1]))
    ctl = await asyncio.start_server(control, HOST, int(sys.argv[3]))
    async with front, ctl:
        await asyncio.gather(front.serve_forever(), ctl.serve_forever())


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: proxy.py LISTEN_PORT UPSTREAM_PORT CONTROL_PORT")
    asyncio.run(main())
