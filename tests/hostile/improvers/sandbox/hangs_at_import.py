# verdict: refused
# expect: did not answer start
"""Never finishes importing."""
while True:
    pass
