# verdict: error
# expect: Permission denied
def run():
    written = []
    for path in ("@@OUTSIDE@@/pwned", "/tmp/rsi-hostile-pwned", "/dev/shm/rsi-hostile-pwned",
                 "/var/tmp/rsi-hostile-pwned"):
        try:
            with open(path, "w") as f:
                f.write("pwned")
            written.append(path)
        except OSError as exc:
            error = exc
    if written:
        return ["ESCAPED", written]
    raise error
