#!/usr/bin/python3
"""The browser test's local web server: serves page.html on
http://localhost:PORT/, the relying party's options in rp/NAME.json as
/rp/NAME.json, and appends every POST /report to REPORTS as one JSON
line; a report with step "done" also creates REPORTS.done-CASE."""
import json
import os
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, REPORTS = int(sys.argv[1]), sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))
PAGE = open(os.path.join(HERE, "page.html"), "rb").read()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        print("GET", self.path, self.headers.get("User-Agent"), flush=True)
        path = self.path.split("?")[0]
        body, ctype = PAGE, "text/html; charset=utf-8"
        m = re.fullmatch(r"/rp/([a-z0-9-]+\.json)", path)
        if m:
            try:
                body, ctype = open(os.path.join(HERE, "rp", m.group(1)), "rb").read(), "application/json"
            except OSError:
                self.send_error(404)
                return
        elif path not in ("/", "/index.html"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

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
