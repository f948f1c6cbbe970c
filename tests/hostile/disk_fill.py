# verdict: error
# expect: No space left on device|File too large
# why: the task folder lives in a size-capped tmpfs
def run():
    chunk = b"x" * 2**20
    for i in range(10**6):
        with open(f"fill{i}", "wb") as f:
            for _ in range(3):
                f.write(chunk)
