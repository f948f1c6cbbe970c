# verdict: error
# expect: Permission denied
import os


def run():
    print(os.listdir("@@HOME_DIR@@"), os.listdir("/root"), os.listdir("/home"))
    return [3, 1, 4, 1, 5]
