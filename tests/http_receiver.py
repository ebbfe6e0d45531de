"""http_receiver.py: a scripted webhook receiver for the HTTP sink's tests (standard
library only).

- Receiver(script): an HTTP/1.1 server with keep-alive on 127.0.0.1 and a free port, in a
  thread of the test. Every request is recorded (method, path, headers, raw body, time)
  before script(request) decides the answer: (status, headers dict, body bytes), or None
  for 204. A script may sleep (a stalled receiver). With tls=(certfile, keyfile) it speaks
  HTTPS.
- Run as a program (python3 http_receiver.py PORT LOG): answers 204 to everything and
  appends each request to LOG as a JSON line, so a test can SIGKILL it mid-run.
"""

import json
import os
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Request:
    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body
        self.time = time.monotonic()

    def json(self):
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        req = Request(self.command, self.path, self.headers, body)
        self.server.owner._record(req)
        answer = self.server.owner.script(req) or (204, {}, b"")
        status, headers, data = answer
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_PUT = _serve

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # broken connections and failed handshakes are part of the tests


class Receiver:
    def __init__(self, script=None, port=0, tls=None):
        self.script = script or (lambda req: None)
        self.requests = []
        self.cond = threading.Condition()
        self.server = _Server(("127.0.0.1", port), _Handler)
        self.server.owner = self
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/", scheme="http", host="127.0.0.1"):
        return "%s://%s:%d%s" % (scheme, host, self.port, path)

    def _record(self, req):
        with self.cond:
            self.requests.append(req)
            self.cond.notify_all()

    def received(self):
        with self.cond:
            return list(self.requests)

    def wait(self, n, timeout=20.0):
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.requests) >= n, timeout):
                raise AssertionError("expected %d requests, got %d within %.1fs"
                                     % (n, len(self.requests), timeout))
            return list(self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def main(argv):
    port, log = int(argv[1]), argv[2]
    out = open(log, "a", buffering=1)
    lock = threading.Lock()

    def script(req):
        with lock:
            out.write(json.dumps({"path": req.path, "body": req.body.decode()}) + "\n")
        return None

    r = Receiver(script, port=port)
    sys.stdout.write("listening %d\n" % r.port)
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv)
