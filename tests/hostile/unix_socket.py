# verdict: error
# expect: Address family not supported
import socket


def run():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("/run/dbus/system_bus_socket")
    return [3, 1, 4, 1, 5]
