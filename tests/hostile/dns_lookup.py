# verdict: error
# expect: gaierror
import socket


def run():
    socket.getaddrinfo("example.com", 443)
    return [3, 1, 4, 1, 5]
