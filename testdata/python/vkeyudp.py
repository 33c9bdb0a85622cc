"""Open a vkey (or any firmware simulator) that speaks CTAPHID over UDP.

python-fido2 (Debian's 0.9.1, and 2.x from .cache/pyfido2) talks to HID
devices through a CtapHidConnection; this module gives it one that sends each
64-byte report as one UDP datagram, the convention of FIDO firmware
simulators (127.0.0.1:8111).
"""

import os
import socket
import sys
import time
import traceback

from fido2.ctap import CtapError
from fido2.hid import CtapHidDevice
from fido2.hid.base import CtapHidConnection, HidDescriptor

REPORT_SIZE = 64


class UdpCtapHidConnection(CtapHidConnection):
    """One CTAPHID report per UDP datagram."""

    def __init__(self, host, port, timeout=10.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))

    def write_packet(self, packet):
        if len(packet) != REPORT_SIZE:
            raise ValueError("CTAPHID reports are 64 bytes, got %d" % len(packet))
        self.sock.send(packet)

    def read_packet(self):
        return self.sock.recv(REPORT_SIZE)

    def close(self):
        self.sock.close()


def address():
    """The UDP address from VKEY_UDP (host:port), default 127.0.0.1:8111."""
    host, _, port = os.environ.get("VKEY_UDP", "127.0.0.1:8111").rpartition(":")
    return host or "127.0.0.1", int(port)


def open_device():
    """A CtapHidDevice for the key at VKEY_UDP."""
    host, port = address()
    desc = ("udp:%s:%d" % (host, port), 0, 0, REPORT_SIZE, REPORT_SIZE)
    if "product_name" in getattr(HidDescriptor, "__dataclass_fields__", {}):
        desc += (None, None)  # python-fido2 1.0 and later: product name, serial number
    desc = HidDescriptor(*desc)
    return CtapHidDevice(desc, UdpCtapHidConnection(host, port))


def check(cond, what):
    """Fail the test run with what unless cond holds; say it passed."""
    if not cond:
        raise SystemExit("FAIL: " + what)
    print("ok: " + what)


def expect_error(code, fn, what):
    """Fail the test run unless fn raises the CTAP error code."""
    try:
        fn()
    except CtapError as e:
        check(e.code == code, "%s (got %s)" % (what, e.code))
        return
    raise SystemExit("FAIL: %s: no error" % what)


def poll_u2f(fn):
    """fn's result, polling while a U2F request answers
    SW_CONDITIONS_NOT_SATISFIED (6985: the key asks for the touch)."""
    from fido2.ctap1 import ApduError

    deadline = time.time() + 10
    while True:
        try:
            return fn()
        except ApduError as e:
            if e.code != 0x6985 or time.time() > deadline:
                raise
            time.sleep(0.05)


def run(main):
    """Run a test's main: any library error fails it, with its traceback."""
    try:
        main()
    except SystemExit:
        raise
    except Exception as e:
        traceback.print_exc()
        print("FAIL: %r" % (e,), file=sys.stderr)
        sys.exit(1)
