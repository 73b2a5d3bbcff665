"""Asks the inspector for new rows as its page does (GET /api/requests?after=N every 700 ms),
until killed. Usage: python3 bench/page.py 'http://127.0.0.1:PORT/?token=T'"""
import json
import sys
import time
import urllib.request

base, token = sys.argv[1].split("/?token=")
last, polls, rows = 0, 0, 0
while True:
    request = urllib.request.Request(
        f"{base}/api/requests?after={last}", headers={"x-hookcli-token": token}
    )
    with urllib.request.urlopen(request) as answer:
        data = json.load(answer)
    polls += 1
    if data["requests"]:
        rows += len(data["requests"])
        last = data["requests"][-1]["id"]
    print(f"{polls} polls, {rows} rows", flush=True)
    time.sleep(0.7)
