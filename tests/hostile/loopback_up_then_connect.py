# verdict: error
# expect: Operation not permitted
# why: bringing the namespace's loopback up needs CAP_NET_ADMIN, which is gone
import fcntl
import socket
import struct


def run():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fcntl.ioctl(s, 0x8914, struct.pack("16sH14x", b"lo", 1))  # SIOCSIFFLAGS IFF_UP
    socket.create_connection(("127.0.0.1", int("@@PORT@@")), timeout=1).close()
    return [3, 1, 4, 1, 5]
