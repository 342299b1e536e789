"""A stage of a Go proc.Pipeline (clients/python_test.go): upper-cases the
strings it reads and drops every third one."""

import ipcchan

count = 0


def upper(v: str):
    global count
    count += 1
    return None if (count - 1) % 3 == 0 else v.upper()


ipcchan.stage(upper, in_codec=ipcchan.STRING, out_codec=ipcchan.STRING)
