"""Small real servers on 127.0.0.1 that stand in for remote clouds and Redis in tests."""
