"""Tests of one module or function at a time: no network, no subprocess, no store."""
