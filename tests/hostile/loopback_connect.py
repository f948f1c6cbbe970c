# verdict: error
# expect: Network is unreachable|Permission denied|Connection refused
# why: the test's listener on the host's loopback must see no connection
import socket


def run():
    socket.create_connection(("127.0.0.1", int("@@PORT@@")), timeout=1).close()
    return [3, 1, 4, 1, 5]
