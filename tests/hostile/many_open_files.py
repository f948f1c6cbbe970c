# verdict: error
# expect: Too many open files
def run():
    files = []
    while True:
        files.append(open("/dev/null"))
