#!/usr/bin/python3
"""The browser test's local web server: serves page.html on
http://localhost:PORT/ and appends every POST /report to REPORTS as one JSON
line; a report with step "done" also creates REPORTS.done-CASE."""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, REPORTS = int(sys.argv[1]), sys.argv[2]
PAGE = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "page.html"), "rb").read()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        print("GET", self.path, self.headers.get("User-Agent"), flush=True)
        if self.path.split("?")[0] not in ("/", "/index.html"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        try:
            report = json.loads(self.rfile.read(n))
            line = json.dumps(report, sort_keys=True)
        except ValueError:
            self.send_error(400)
            return
        with open(REPORTS, "a") as f:
            f.write(line + "\n")
        print("report:", line, flush=True)
        if report.get("step") == "done":
            name = "".join(c for c in str(report.get("case")) if c.isalnum() or c == "-")
            open(REPORTS + ".done-" + name, "w").close()
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
