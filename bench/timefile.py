"""Reading `/usr/bin/time -v -o FILE` output; shared by the bench/*-report.py scripts
(Python standard library only)."""


def parse_time(path):
    """wall s, cpu s, peak RSS KiB from a `/usr/bin/time -v` file (None when unreadable)."""
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError:
        return None
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.strip().rpartition(": ")
        if sep:
            fields[key] = value.strip()
    try:
        wall = 0.0
        for part in fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":"):
            wall = wall * 60 + float(part)
        cpu = float(fields["User time (seconds)"]) + float(fields["System time (seconds)"])
        rss = int(fields["Maximum resident set size (kbytes)"])
    except (KeyError, ValueError):
        return None
    return wall, cpu, rss
