"""The floor: a bare Flask app that only answers 200, run under the same gunicorn config."""

from flask import Flask

app = Flask(__name__)


@app.post("/")
def ok():
    return "", 200
